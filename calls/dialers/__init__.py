"""Dialer back ends: one small interface, a registry of dotted paths, imported lazily.

A back end places a call (`place(call)`) and reports every status change through the one service
function `calls.events.record_call_event(call, status, source, ...)`. Work it needs to do later (the
next step of a simulated call, a poll of a carrier API) is scheduled with
`calls.dialing.schedule_dialer_step(call, due_at, state)`; the task `calls.advance_call` — or the
periodic sweep, if a message was lost — then calls `advance(call)` once the step is due.

Adding a carrier means writing one module with a `Dialer` subclass and one line in `DIALERS`.
"""

from __future__ import annotations

from functools import cache
from importlib import import_module
from typing import TYPE_CHECKING, Any

from django.conf import settings

if TYPE_CHECKING:
    from calls.models import Call

DIALERS: dict[str, str] = {
    "simulated": "calls.dialers.simulated.SimulatedDialer",
    "livekit": "calls.dialers.livekit.LiveKitDialer",
}
DEFAULT_DIALER = "simulated"


class DialerConfigError(ValueError):
    """The trunk's dialer_config (or dialer_secrets: `field`) is not valid for its back end."""

    def __init__(self, message: str, field: str = "dialer_config") -> None:
        super().__init__(message)
        self.field = field


class UnknownDialer(LookupError):
    pass


class Dialer:
    """The interface every back end implements."""

    name: str = ""

    def validate_config(self, config: Any) -> dict:
        """Return the normalised config, or raise DialerConfigError with a readable message."""
        if config in (None, {}):
            return {}
        raise DialerConfigError(f"the {self.name} dialer takes no settings")

    def validate_secrets(self, secrets: Any, config: dict) -> dict:
        """Return the normalised secrets (the merged, stored map), or raise DialerConfigError."""
        if secrets in (None, {}):
            return {}
        raise DialerConfigError(f"the {self.name} dialer takes no secrets")

    def expected_duration(self, config: dict) -> float:
        """Seconds a call typically holds a channel (used to estimate Retry-After when channels are full)."""
        return float(settings.CALLS_EXPECTED_CALL_SECONDS)

    def place(self, call: Call) -> None:
        """Start dialing `call` (status Initiating). Report progress through record_call_event."""
        raise NotImplementedError

    def advance(self, call: Call) -> None:
        """Run the step scheduled with schedule_dialer_step, now due."""


def clean_settings(name: str, config: Any, secrets: Any) -> tuple[dict, dict]:
    """A trunk's (dialer_config, dialer_secrets) normalised for back end `name` — the one check the API
    and the admin share. `secrets` is the merged map that will be stored. Raises DialerConfigError
    (its `field` names which of the two is wrong) or UnknownDialer."""
    dialer = get_dialer(name)
    clean_config = dialer.validate_config(config)
    try:
        clean_secrets = dialer.validate_secrets(secrets, clean_config)
    except DialerConfigError as exc:
        raise DialerConfigError(str(exc), field="dialer_secrets") from None
    return clean_config, clean_secrets


def dialer_names() -> list[str]:
    return sorted(DIALERS)


@cache
def get_dialer(name: str) -> Dialer:
    """The back end registered as `name` (imported on first use)."""
    try:
        dotted = DIALERS[name]
    except KeyError:
        raise UnknownDialer(f"unknown dialer {name!r}; choose one of: {', '.join(dialer_names())}") from None
    module_name, _, class_name = dotted.rpartition(".")
    return getattr(import_module(module_name), class_name)()
