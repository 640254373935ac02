"""Log output (SPEC §17): `LOG_FORMAT=json` for one JSON object per line, and a last-line scrubber.

Every log call already passes redacted text (the executor's redactor, URL-free error messages). The
`ScrubSecrets` filter on the console handler is the net under that: whatever format is chosen, a value
shaped like one of Switchboard's own secrets (API keys `swb_…`, widget and signing secrets, webhook
secrets `whsec_…`) or a `Bearer` token is masked before the line is written, in the message and in
every `extra=` field alike.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

SECRET_SHAPES = re.compile(
    r"(?P<bearer>(?i:bearer)\s+)[A-Za-z0-9._~+/=-]{8,}"
    r"|(?P<token>(?:swb_(?:pk_|ws_|sig_)?|whsec_)[A-Za-z0-9_+/=-]{16,})"
)
MASK = "••••"
# LogRecord's own attributes: everything else on a record came from `extra=`.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def scrub(text: str) -> str:
    """`text` with every secret-shaped value masked."""
    return SECRET_SHAPES.sub(lambda m: (m.group("bearer") or "") + MASK, text)


class ScrubSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        for name, value in list(vars(record).items()):
            if name not in _RECORD_ATTRS and isinstance(value, str):
                setattr(record, name, scrub(value))
        if record.exc_info and not record.exc_text:
            # Format the traceback once here so the scrubbed text is what every formatter prints.
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


class JsonFormatter(_JsonFormatter):
    """`{"time": "2026-12-01T20:30:00.123Z", "level": "INFO", "logger": "…", "message": "…", …extra}`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger", "exc_info": "exception"})
        super().__init__("%(levelname)s %(name)s %(message)s", *args, **kwargs)

    def add_fields(self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        super().add_fields(log_record, record, message_dict)
        log_record["time"] = self.formatTime(record)
        log_record["process"] = record.process
        # This formatter renders the traceback itself (not from exc_text): scrub its text as well.
        for name in ("exception", "stack_info"):
            if isinstance(log_record.get(name), str):
                log_record[name] = scrub(log_record[name])

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
