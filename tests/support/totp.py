"""RFC 6238 codes computed by the tests themselves (not by django-otp), from a base32 secret or a URI."""

from __future__ import annotations

import base64
import hmac
import struct
import time
from urllib.parse import parse_qs, urlsplit


def secret_of(uri: str) -> str:
    return parse_qs(urlsplit(uri).query)["secret"][0]


def totp(secret: str, *, steps_ahead: int = 0, period: int = 30, digits: int = 6) -> str:
    """The code for now (+ `steps_ahead` periods): a later step lets a test sign in twice in one period."""
    secret = "".join(secret.split()).upper()
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    counter = int(time.time()) // period + steps_ahead
    mac = hmac.new(key, struct.pack(">Q", counter), "sha1").digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)
