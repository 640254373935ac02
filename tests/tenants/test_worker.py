"""Celery: the app's delivery guarantees, a real worker round trip, and beat's schedule (SPEC §11)."""

from __future__ import annotations

import logging
import uuid

from django.core.cache import cache

from config.celery import app
from tenants.tasks import HEARTBEAT_KEY, heartbeat
from tests.support.worker import wait_for


def test_tasks_are_acked_late_requeued_on_worker_loss_and_fetched_one_at_a_time():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.beat_scheduler == "django_celery_beat.schedulers:DatabaseScheduler"


def test_every_periodic_job_is_acked_on_start_so_a_run_that_kills_its_worker_is_not_redelivered(settings):
    # (beat sends them again; tasks on one object bound their redeliveries in the database instead)
    app.loader.import_default_modules()
    names = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}

    assert {"tenants.heartbeat", "calls.sweep_webhooks", "integrations.refresh_oauth_tokens"} <= names
    for name in sorted(names):
        assert app.tasks[name].acks_late is False, name


def test_heartbeat_runs_through_a_real_worker(celery_worker_process):
    # given a real worker process on its own queue
    nonce = uuid.uuid4().hex
    # when the heartbeat task is sent through the broker
    heartbeat.delay(nonce)
    # then the worker runs it and stamps the shared cache
    stamp = wait_for(lambda: cache.get(f"{HEARTBEAT_KEY}:{nonce}"), timeout=60)
    assert cache.get(HEARTBEAT_KEY) == stamp
    assert "Task tenants.heartbeat[" in celery_worker_process.log()


def test_beat_copies_the_schedule_into_the_database(transactional_db):
    # (transactional: the scheduler closes database connections as `celery beat` does)
    # given django-celery-beat's scheduler (what `celery beat` runs)
    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import DatabaseScheduler

    # when it starts
    DatabaseScheduler(app=app)
    # then the heartbeat is a periodic task the admin can see and tune
    task = PeriodicTask.objects.get(name="worker-heartbeat")
    assert (task.task, task.interval.every, task.interval.period, task.enabled) == (
        "tenants.heartbeat",
        60,
        "seconds",
        True,
    )


def test_periodic_housekeeping_does_not_flood_the_log(caplog):
    # `make run` printed three INFO lines every two seconds for the dialer sweep alone
    trace, beat = logging.getLogger("celery.app.trace"), logging.getLogger("celery.beat")
    succeeded = "Task %(name)s[%(id)s] succeeded in %(runtime)ss: %(return_value)s"
    with caplog.at_level(logging.INFO):
        beat.info("Scheduler: Sending due task %s (%s)", "calls-dialer-sweep", "calls.sweep_dialer")
        trace.info(succeeded, {"name": "calls.sweep_dialer", "id": "1", "runtime": 0.01, "return_value": 0})
        trace.info(succeeded, {"name": "calls.advance_call", "id": "2", "runtime": 0.01, "return_value": None})
        trace.error("Task %(name)s[%(id)s] raised: boom", {"name": "calls.sweep_dialer", "id": "3"})
    assert [record.getMessage() for record in caplog.records] == [
        "Task calls.advance_call[2] succeeded in 0.01s: None",
        "Task calls.sweep_dialer[3] raised: boom",
    ]
    with caplog.at_level(logging.DEBUG):
        beat.info("Scheduler: Sending due task %s (%s)", "calls-dialer-sweep", "calls.sweep_dialer")
    assert caplog.records[-1].getMessage().endswith("(calls.sweep_dialer)")


def test_the_embedded_broker_creates_the_folder_of_its_file(tmp_path):
    # SQLite creates its file but not the folder: a worker started with explicit secrets (so nothing
    # had generated .local/) crash-looped on "unable to open database file"
    from config.celery import _create_broker_folder

    _create_broker_folder(f"sqlite:///{tmp_path / 'local' / 'nested' / 'broker.sqlite3'}")
    _create_broker_folder("sqlite:///:memory:")
    _create_broker_folder("postgresql://broker@db/celery")

    assert (tmp_path / "local" / "nested").is_dir()
    assert list((tmp_path / "local" / "nested").iterdir()) == []
