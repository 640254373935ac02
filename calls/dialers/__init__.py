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
}
DEFAULT_DIALER = "simulated"


class DialerConfigError(ValueError):
    """The trunk's dialer_config is not valid for its back end (the message says why)."""


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

    def expected_duration(self, config: dict) -> float:
        """Seconds a call typically holds a channel (used to estimate Retry-After when channels are full)."""
        return float(settings.CALLS_EXPECTED_CALL_SECONDS)

    def place(self, call: Call) -> None:
        """Start dialing `call` (status Initiating). Report progress through record_call_event."""
        raise NotImplementedError

    def advance(self, call: Call) -> None:
        """Run the step scheduled with schedule_dialer_step, now due."""


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
