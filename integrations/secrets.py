"""Write-only secret maps: what a write keeps, and how a stored map is shown."""

from __future__ import annotations

from typing import Any

from tenants.secrets import mask, mask_map


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def merge_secret_map(old: dict | None, new: dict | None, *, partial_keys: bool) -> dict:
    """The stored map after a write of `new`: a blank value keeps the old one (per key).

    With `partial_keys` (a credential's `secrets`), keys missing from `new` are kept; without it (a
    header map, a credential's `params`), `new` names the full set and keys missing from it are dropped.
    Nested maps merge by the second rule.
    """
    old = dict(old or {})
    merged = dict(old) if partial_keys else {}
    for key, value in (new or {}).items():
        if isinstance(value, dict):
            merged[key] = merge_secret_map(
                old.get(key) if isinstance(old.get(key), dict) else {}, value, partial_keys=False
            )
        elif is_blank(value):
            if key in old:
                merged[key] = old[key]
        else:
            merged[key] = value
    return merged


def masked(values: dict | None) -> dict:
    """A stored secret map as shown anywhere: every value masked, nested maps per value."""
    return {
        key: mask_map(value) if isinstance(value, dict) else mask(value if isinstance(value, str) else str(value))
        for key, value in (values or {}).items()
    }
