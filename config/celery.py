"""The Celery application. Broker and behaviour come from Django settings (CELERY_*)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("switchboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Periodic sweeps that run every few seconds: their "sending / received / succeeded" INFO lines filled
# the `make run` log (about 100 a minute) and hid everything else. Their warnings and errors still
# show, and at DEBUG level (`celery … --loglevel=DEBUG`) every line does.
QUIET_TASKS = ("calls.sweep_dialer", "calls.sweep_webhooks", "campaigns.tick")


class QuietHousekeeping(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO or logging.getLogger().isEnabledFor(logging.DEBUG):
            return True
        message = record.getMessage()
        return not any(f" {name}[" in message or f"({name})" in message for name in QUIET_TASKS)


for _name in ("celery.beat", "celery.worker.strategy", "celery.app.trace"):
    logging.getLogger(_name).addFilter(QuietHousekeeping())


def _tune_embedded_broker() -> None:
    # kombu's SQLAlchemy transport polls; its interval must be set on the class: passing it through
    # broker_transport_options hands it to create_engine(), which crashes the worker.
    from django.conf import settings

    if settings.CELERY_BROKER_URL.startswith("sqla+"):
        from kombu.transport import sqlalchemy

        sqlalchemy.Transport.polling_interval = settings.CELERY_BROKER_POLLING_INTERVAL
        _create_broker_folder(settings.CELERY_BROKER_URL.removeprefix("sqla+"))


def _create_broker_folder(url: str) -> None:
    """Create the folder of an SQLite broker file: SQLite creates the file but not its folder, and the
    worker crash-looped ("unable to open database file") wherever nothing else had made it."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    # In memory, or a `file:` URI (uri=true): no plain path whose folder could be created.
    plain_file = parsed.database not in (None, "", ":memory:") and not parsed.query.get("uri")
    if parsed.get_backend_name() == "sqlite" and plain_file:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


@app.on_after_configure.connect
def _on_configure(sender, **kwargs) -> None:
    _tune_embedded_broker()
