"""Redaction of what is stored or shown about a request: secret headers, query values and any secret value.

Redacted values become `••••`. Three nets, all applied: header names that look like credentials, the
names a credential type fills in itself, and every known secret value wherever it appears.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit, urlunsplit

from tenants.secrets import MASK

SENSITIVE_NAME = re.compile(
    r"(?i)(auth|token|secret|passw|pwd|signature|^sig$|session|cookie|credential|api[-_]?key|^key$|[-_]key$|^code$)"
)
# Headers of a connection/endpoint are stored as secrets, but these carry no credential and help debugging.
HARMLESS_HEADERS = frozenset(
    {
        "accept", "accept-encoding", "accept-language", "cache-control", "content-length", "content-type",
        "if-match", "if-modified-since", "if-none-match", "pragma", "user-agent", "x-correlation-id", "x-request-id",
    }
)  # fmt: skip
MIN_SECRET_LENGTH = 4


def secret_variants(value: Any) -> set[str]:
    """Every spelling of a secret that may travel: raw, URL-encoded, and base64 (standard and URL-safe,
    unpadded, so the padded form is caught too). A pair such as `user:password` is passed whole by
    whoever builds it (a Basic header), so its base64 is covered here."""
    text = str(value) if value is not None else ""
    if len(text) < MIN_SECRET_LENGTH:
        return set()
    raw = text.encode("utf-8", "surrogatepass")
    return {
        text,
        quote(text, safe=""),
        quote_plus(text),
        base64.b64encode(raw).decode("ascii").rstrip("="),
        base64.urlsafe_b64encode(raw).decode("ascii").rstrip("="),
    }


class Redactor:
    """Knows the secrets of one request and removes them from anything shown or stored."""

    __slots__ = ("header_names", "query_names", "values")

    def __init__(
        self, *, header_names: Iterable[str] = (), query_names: Iterable[str] = (), values: Iterable[Any] = ()
    ) -> None:
        self.header_names = {name.lower() for name in header_names}
        self.query_names = set(query_names)
        variants: set[str] = set()
        for value in values:
            variants |= secret_variants(value)
        # Longest first, so a secret containing another is replaced whole.
        self.values = sorted(variants, key=len, reverse=True)

    def add_values(self, values: Iterable[Any]) -> None:
        extra = Redactor(values=values).values
        self.values = sorted(set(self.values) | set(extra), key=len, reverse=True)

    def header_is_secret(self, name: str) -> bool:
        lower = name.lower()
        return lower in self.header_names or bool(SENSITIVE_NAME.search(lower))

    def query_is_secret(self, name: str) -> bool:
        return name in self.query_names or bool(SENSITIVE_NAME.search(name))

    def headers(self, headers: dict[str, str]) -> dict[str, str]:
        return {name: MASK if self.header_is_secret(name) else self.text(value) for name, value in headers.items()}

    def url(self, url: str) -> str:
        parts = urlsplit(url)
        if parts.query:
            pairs = parse_qsl(parts.query, keep_blank_values=True)
            query = "&".join(f"{quote_plus(k)}={MASK if self.query_is_secret(k) else quote_plus(v)}" for k, v in pairs)
            parts = parts._replace(query=query)
        if parts.password or parts.username:
            parts = parts._replace(netloc=f"{MASK}@{parts.hostname}" + (f":{parts.port}" if parts.port else ""))
        return self.text(urlunsplit(parts))

    def text(self, text: str) -> str:
        if not self.values or not text:
            return text
        for value in self.values:
            if value in text:
                text = text.replace(value, MASK)
        return text

    def data(self, value: Any) -> Any:
        """Any JSON value with every secret string replaced (for display)."""
        if not self.values:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.data(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.data(v) for v in value]
        return value
