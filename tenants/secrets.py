"""How secrets are shown: masked, never in full."""

from __future__ import annotations

import hashlib

MASK = "••••"


def hash_token(raw: str) -> str:
    """How bearer secrets (API keys, widget session tokens) are stored: their SHA-256, hex.

    They carry 256 bits of entropy, so a fast hash is enough (no offline guessing is possible) and a
    request finds its row by an indexed lookup.
    """
    return hashlib.sha256(raw.encode()).hexdigest()


def mask(value: str | None) -> str:
    """`••••` + the last 4 characters when the value is at least 12 long, else only `••••`."""
    if not value:
        return ""
    value = str(value)
    return MASK + value[-4:] if len(value) >= 12 else MASK


def mask_map(values: dict | None) -> dict:
    """A map of secrets (e.g. headers) with every value masked and the names kept."""
    return {name: mask(value if isinstance(value, str) else str(value)) for name, value in (values or {}).items()}
