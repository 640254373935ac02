"""The Celery application. Broker and behaviour come from Django settings (CELERY_*)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("switchboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


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
