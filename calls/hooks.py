"""Hooks other apps register to hear about calls, without `calls` importing them (imports go one way).

`on_call_ended(func)` registers `func(call)`; `record_call_event` runs every registered hook inside
the transaction that records a terminal status, so a hook that writes (or enqueues work with
`transaction.on_commit`) commits or rolls back together with the status. Apps register in their
`AppConfig.ready()` (campaigns: run the row's after-call steps).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from calls.models import Call

CallHook = Callable[["Call"], None]
_ended: list[CallHook] = []


def on_call_ended(func: CallHook) -> CallHook:
    """Register `func(call)` to run when a call reaches a terminal status (idempotent)."""
    if func not in _ended:
        _ended.append(func)
    return func


def call_ended(call: Call) -> None:
    """Run the hooks for terminal `call` (called by record_call_event inside its transaction)."""
    for func in list(_ended):
        func(call)
