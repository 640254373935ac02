"""How secrets are shown: masked, never in full."""

from __future__ import annotations

MASK = "••••"


def mask(value: str | None) -> str:
    """`••••` + the last 4 characters when the value is at least 12 long, else only `••••`."""
    if not value:
        return ""
    value = str(value)
    return MASK + value[-4:] if len(value) >= 12 else MASK


def mask_map(values: dict | None) -> dict:
    """A map of secrets (e.g. headers) with every value masked and the names kept."""
    return {name: mask(value if isinstance(value, str) else str(value)) for name, value in (values or {}).items()}
