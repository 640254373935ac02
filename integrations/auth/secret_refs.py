"""Secret references: a stored secret may name where the value lives instead of holding it.

`env:NAME` reads the process environment, `file:/path` reads a file (trailing newline stripped). The
resolvers are a registry (scheme → dotted path, imported lazily) so a vault back end plugs in with one
line and no change to the executor. Anything that is not `<registered scheme>:...` is a literal.

A reference reads only what the operator opened for tenants (`SECRET_REFS_ENV_PREFIXES`,
`SECRET_REFS_ENV_NAMES`, `SECRET_REFS_FILE_DIRS`; nothing by default) and never the app's own
configuration (`SETTINGS_ENV_NAMES`, `SETTINGS_FILES`): checked at save (`reference_problem`) and
again by the resolver at call time. Messages never say whether a file exists.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

RESOLVERS: dict[str, str] = {
    "env": "integrations.auth.secret_refs.resolve_env",
    "file": "integrations.auth.secret_refs.resolve_file",
}
# Save-time checks per scheme (a vault back end may register one too); the resolver re-checks.
CHECKS: dict[str, str] = {
    "env": "integrations.auth.secret_refs.check_env",
    "file": "integrations.auth.secret_refs.check_file",
}
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MAX_FILE_BYTES = 64 * 1024


class SecretUnavailable(Exception):
    """A reference could not be resolved. The message names the reference, never a secret value."""


class SecretRefused(SecretUnavailable):
    """A reference to something the operator has not opened for tenants."""


def check_env(name: str) -> None:
    """Refuse a variable outside the operator's prefixes/names, and every variable of the settings."""
    if not ENV_NAME.match(name):
        raise SecretRefused(f"env:{name[:60]} is not a valid environment variable name")
    own = name in getattr(settings, "SETTINGS_ENV_NAMES", ()) or name.startswith("DJANGO_")
    opened = name in settings.SECRET_REFS_ENV_NAMES or any(
        name.startswith(prefix) for prefix in settings.SECRET_REFS_ENV_PREFIXES
    )
    if own or not opened:
        raise SecretRefused(
            f"env:{name} is not allowed: only variables the operator opened for tenants "
            "(SECRET_REFS_ENV_PREFIXES, SECRET_REFS_ENV_NAMES) may be referenced"
        )


def resolve_env(name: str) -> str:
    check_env(name)
    value = os.environ.get(name)
    if value is None:
        raise SecretUnavailable(f"environment variable {name} is not set")
    return value


def _allowed_path(path: str) -> Path | None:
    """The real path when it lies inside an opened directory and is none of the settings' files."""
    if not path.startswith("/") or "\x00" in path:
        return None
    real = Path(os.path.realpath(path))  # symlinks and `..` resolved before the containment check
    if str(real) in getattr(settings, "SETTINGS_FILES", ()):
        return None
    for directory in settings.SECRET_REFS_FILE_DIRS:
        root = Path(os.path.realpath(directory))
        if real != root and real.is_relative_to(root):
            return real
    return None


def _file_refused(path: str) -> SecretRefused:
    return SecretRefused(
        f"file:{path[:200]} is not allowed: only files under a directory the operator opened for "
        "tenants (SECRET_REFS_FILE_DIRS) may be referenced"
    )


def check_file(path: str) -> None:
    """Refuse a path outside the operator's directories (without looking at whether it exists)."""
    if _allowed_path(path) is None:
        raise _file_refused(path)


def resolve_file(path: str) -> str:
    real = _allowed_path(path)
    if real is None:
        raise _file_refused(path)
    # One message for every failure (missing, unreadable, not a file, too large, not UTF-8), so a
    # reference cannot probe which files exist.
    unreadable = SecretUnavailable(f"secret file {path[:200]} cannot be read as a UTF-8 text file of at most 64 KiB")
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        raise unreadable from None
    try:
        data = _read_regular(fd)
    except OSError:
        raise unreadable from None
    finally:
        os.close(fd)
    if data is None or len(data) > MAX_FILE_BYTES:
        raise unreadable
    try:
        return data.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise unreadable from None


def _read_regular(fd: int) -> bytes | None:
    """At most MAX_FILE_BYTES + 1 bytes of a regular file; None for a directory, FIFO or device."""
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        return None
    chunks, size = [], 0
    while size <= MAX_FILE_BYTES and (chunk := os.read(fd, MAX_FILE_BYTES + 1 - size)):
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


@cache
def _resolver(scheme: str) -> Callable[[str], str]:
    return import_string(RESOLVERS[scheme])


@cache
def _check(scheme: str) -> Callable[[str], None] | None:
    return import_string(CHECKS[scheme]) if scheme in CHECKS else None


def register(scheme: str, dotted_path: str, check: str | None = None) -> None:
    """Add (or replace) the resolver of `scheme:` references, and optionally its save-time check."""
    RESOLVERS[scheme] = dotted_path
    if check:
        CHECKS[scheme] = check
    _resolver.cache_clear()
    _check.cache_clear()


def reference_problem(value: Any) -> str:
    """Why `value` (a secret, or a map of them) is a reference tenants may not use, or ''."""
    if isinstance(value, dict):
        return next((problem for item in value.values() if (problem := reference_problem(item))), "")
    scheme = reference_scheme(value)
    check = _check(scheme) if scheme else None
    if scheme is None or check is None:
        return ""
    try:
        check(value[len(scheme) + 1 :])
    except SecretUnavailable as exc:
        return str(exc)
    return ""


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
