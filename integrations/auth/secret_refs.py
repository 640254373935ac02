"""Secret references: a stored secret may name where the value lives instead of holding it.

`env:NAME` reads the process environment, `file:/path` reads a file (trailing newline stripped). The
resolvers are a registry (scheme → dotted path, imported lazily) so a vault back end plugs in with one
line and no change to the executor. Anything that is not `<registered scheme>:...` is a literal.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from django.utils.module_loading import import_string

RESOLVERS: dict[str, str] = {
    "env": "integrations.auth.secret_refs.resolve_env",
    "file": "integrations.auth.secret_refs.resolve_file",
}


class SecretUnavailable(Exception):
    """A reference could not be resolved. The message names the reference, never a secret value."""


def resolve_env(name: str) -> str:
    value = os.environ.get(name)
    if value is None:
        raise SecretUnavailable(f"environment variable {name} is not set")
    return value


def resolve_file(path: str) -> str:
    try:
        return Path(path).read_text().rstrip("\r\n")
    except OSError as exc:
        raise SecretUnavailable(f"secret file {path} cannot be read ({exc.strerror or 'error'})") from None


@cache
def _resolver(scheme: str) -> Callable[[str], str]:
    return import_string(RESOLVERS[scheme])


def register(scheme: str, dotted_path: str) -> None:
    """Add (or replace) the resolver of `scheme:` references."""
    RESOLVERS[scheme] = dotted_path
    _resolver.cache_clear()


def reference_scheme(value: Any) -> str | None:
    """The scheme when `value` is a reference (`env:NAME`), else None (a literal)."""
    if not isinstance(value, str):
        return None
    scheme, sep, rest = value.partition(":")
    return scheme if sep and rest and scheme in RESOLVERS else None


def resolve(value: Any) -> Any:
    """The secret itself: a reference is resolved, a literal returned as is; maps are resolved per value."""
    if isinstance(value, dict):
        return {key: resolve(item) for key, item in value.items()}
    scheme = reference_scheme(value)
    if scheme is None:
        return value
    return _resolver(scheme)(value[len(scheme) + 1 :])
