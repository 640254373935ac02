"""The task queue helper calls has always imported; it lives in `tenants.queue` so rules can use it too."""

from __future__ import annotations

from tenants.queue import enqueue, enqueue_on_commit

__all__ = ["enqueue", "enqueue_on_commit"]
