"""`ExecutionResult`: what one execution of an endpoint gave (`integrations.executor.execute`).

Apart from the executor so that the call log (`integrations.calllog`), which the executor writes
through, can take it without importing the executor back. Callers name it `executor.ExecutionResult`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from integrations.models import CallStatus
from integrations.rendering import PreparedRequest


@dataclass
class ExecutionResult:
    """The outcome of one execution. `to_dict()` is the public shape; the rest is for callers that need more.

    `say` is the endpoint's response template rendered (for tools and rules), `warnings` lists missing
    template variables and unresolved mapping paths, `request` is the rendered request (`.redacted()`
    to show it).
    """

    status: str
    status_code: int | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    duration_ms: int = 0
    attempts: int = 0
    mapped: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    include_raw: bool = False
    raw_text: str = ""
    response_size: int = 0
    cached: bool = False
    say: str = ""
    warnings: list[str] = field(default_factory=list)
    request: PreparedRequest | None = None
    log_id: Any = None

    @property
    def ok(self) -> bool:
        return self.status == CallStatus.SUCCESS

    @property
    def timestamp(self) -> str:
        return self.started_at.strftime("%Y-%m-%dT%H:%M:%SZ")

    def to_dict(self) -> dict[str, Any]:
        """SPEC §4's result: `raw` only with include_raw, `error` only when not success; secrets scrubbed."""
        scrub = self.request.redactor.data if self.request else _same
        result: dict[str, Any] = {
            "status": self.status,
            "status_code": self.status_code,
            "body": scrub(self.body),
            "headers": scrub(self.headers),
            "timestamp": self.timestamp,
            "duration_ms": self.duration_ms,
            "attempts": self.attempts,
            "mapped": scrub(self.mapped),
        }
        if self.include_raw:
            result["raw"] = scrub(self.raw_text)
        if self.status != CallStatus.SUCCESS:
            result["error"] = scrub(self.error or "")
        return result


def _same(value: Any) -> Any:
    return value
