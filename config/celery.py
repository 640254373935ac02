"""The Celery application. Broker and behaviour come from Django settings (CELERY_*)."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from datetime import datetime
from pathlib import Path

from celery import Celery, bootsteps
from celery.signals import before_task_publish, setup_logging, task_prerun

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


def _use_django_logging(**kwargs) -> None:
    # Celery replaces the root logger's handlers with its own plain format unless a receiver of
    # setup_logging configures logging itself: with LOG_FORMAT=json, workers and beat then write the
    # same JSON lines (and go through the same secret scrubbing) as the web processes.
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


if os.environ.get("LOG_FORMAT", "").strip().lower() == "json":
    setup_logging.connect(_use_django_logging, weak=False)


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
    database = parsed.database or ""
    plain_file = database not in ("", ":memory:") and not parsed.query.get("uri")
    if parsed.get_backend_name() == "sqlite" and plain_file:
        Path(database).parent.mkdir(parents=True, exist_ok=True)


@app.on_after_configure.connect
def _on_configure(sender, **kwargs) -> None:
    _tune_embedded_broker()


# Task queue delay (tenants.metrics): every message carries the time it was sent; when a worker starts
# the task, the wait since it was due (sent, or its ETA if later) is observed.
SENT_AT_HEADER = "switchboard_sent_at"


@before_task_publish.connect
def _stamp_sent_at(headers=None, **kwargs) -> None:
    if headers is not None:
        headers.setdefault(SENT_AT_HEADER, time.time())


@task_prerun.connect
def _observe_queue_delay(task=None, **kwargs) -> None:
    from tenants import metrics

    request = getattr(task, "request", None)
    sent_at = getattr(request, SENT_AT_HEADER, None)
    if not isinstance(sent_at, int | float):
        return  # sent by something that does not stamp (or run eagerly)
    due = sent_at
    eta = getattr(request, "eta", None)
    if eta:
        with contextlib.suppress(ValueError):
            due = max(due, datetime.fromisoformat(str(eta)).timestamp())
    metrics.observe_queue_delay(task.name, time.time() - due)


class CallDispatcher(bootsteps.StartStopStep):
    """Runs `calls.dispatcher` in the worker's main process (PostgreSQL, CALLS_DISPATCHER on).

    Started after the pool: a prefork pool forks its first children in the Pool step, so they never see
    the thread or its connection. A child forked later (a replacement) inherits the connection's
    socket but no thread; it never uses it, and psycopg closes a connection only in the process that
    opened it. Stopped (its session closed, its lock released) when the worker shuts down.
    """

    requires = ("celery.worker.components:Pool",)

    def create(self, worker):
        from calls import dispatcher

        return dispatcher.for_worker()  # None: nothing to start or stop


app.steps["worker"].add(CallDispatcher)
