"""The Celery application. Broker and behaviour come from Django settings (CELERY_*)."""

from __future__ import annotations

import logging
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("switchboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Periodic sweeps that run every few seconds: their "sending / received / succeeded" INFO lines filled
# the `make run` log (about 100 a minute) and hid everything else. Their warnings and errors still
# show, and at DEBUG level (`celery … --loglevel=DEBUG`) every line does.
QUIET_TASKS = ("calls.sweep_dialer", "calls.sweep_webhooks")


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


@app.on_after_configure.connect
def _on_configure(sender, **kwargs) -> None:
    _tune_embedded_broker()
