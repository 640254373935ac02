"""Environment helpers for settings: fail loudly on malformed values."""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

# Every variable (and NAME_FILE file) the settings read: the app's own configuration, which tenants'
# `env:` / `file:` secret references may never name (integrations.auth.secret_refs).
READ_NAMES: set[str] = set()
READ_FILES: set[str] = set()

TRUE_VALUES = {"1", "true", "yes", "on"}
FALSE_VALUES = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    """Read NAME, or the contents of the file named by NAME_FILE (Docker/K8s secrets)."""
    READ_NAMES.update((name, f"{name}_FILE"))
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        READ_FILES.add(str(Path(file_name).resolve()))
        # A missing or unreadable secrets file is a configuration error, not a traceback from deep
        # inside the settings module (mounts that are late or have the wrong owner are common).
        try:
            return Path(file_name).read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not UTF-8 text"
            raise ImproperlyConfigured(f"{name}_FILE names {file_name}, which cannot be read: {reason}") from exc
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    READ_NAMES.add(name)
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in TRUE_VALUES:
        return True
    if value in FALSE_VALUES:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    READ_NAMES.add(name)
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


def env_float(name: str, default: float) -> float:
    READ_NAMES.add(name)
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from exc


def env_float_list(name: str, default: list[float]) -> list[float]:
    """Comma-separated numbers, e.g. a retry schedule in seconds."""
    items = env_list(name)
    if not items:
        return list(default)
    try:
        return [float(item) for item in items]
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be comma-separated numbers, got {os.environ.get(name)!r}") from exc


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = env_str(name)
    if not raw.strip():
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


def local_secret(path: Path, generate) -> str:
    """Read a development secret from a git-ignored file, generating it once."""
    READ_FILES.add(str(path.resolve()))
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = generate()
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value
