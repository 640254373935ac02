"""A real Celery worker process for tests that need one (`celery_worker_process` fixture).

The worker runs the project's own settings against the test database and the suite's broker, on a
queue of its own so stray messages of other runs never reach it. Tests using it need committed data:
request `transactional_db` (or `live_server`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection

from calls import dispatcher
from config.env import TRUE_VALUES

ROOT = Path(__file__).resolve().parents[2]


def database_url_for_test_db() -> str:
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    user = s.get("USER") or ""
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    port = f":{s['PORT']}" if s.get("PORT") else ""
    return f"postgres://{auth}{s.get('HOST') or '127.0.0.1'}{port}/{s['NAME']}"


class WorkerProcess:
    def __init__(self, queue: str, env: dict[str, str]) -> None:
        self.queue = queue
        self.env = env
        self.process: subprocess.Popen | None = None
        self.log_path = ROOT / ".local" / f"test-worker-{queue}.log"

    def start(self, *, wait_for_dispatcher: bool = True) -> None:
        """Start the worker. On PostgreSQL, also wait until its call dispatcher listens: a call admitted
        before then is announced to nobody, and only beat's dialer sweep (which tests do not run) would
        send it. `wait_for_dispatcher=False` for a worker whose dispatcher stays a standby."""
        since = _database_now() if wait_for_dispatcher and self._runs_dispatcher() else None
        self._start()
        if since is not None:
            wait_for(lambda: self._dispatcher_listening(since), timeout=60, interval=0.1, failure=self.log)

    def _start(self) -> None:
        self.log_path.parent.mkdir(exist_ok=True)
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool=solo",
                "--loglevel=INFO",
                "-Q",
                self.queue,
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill the worker abruptly (as a crash would)."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)

    def stop(self, *, graceful: bool = False) -> None:
        """Stop the worker. Teardown kills it at once: a warm shutdown of the polling transports takes
        seconds and proves nothing once the test's assertions are done; pass graceful=True to test one."""
        if not graceful:
            self.kill()
            return
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _runs_dispatcher(self) -> bool:
        return connection.vendor == "postgresql" and self.env.get("CALLS_DISPATCHER", "true").lower() in TRUE_VALUES

    def _dispatcher_listening(self, since) -> bool:
        if self.process is not None and self.process.poll() is not None:
            pytest.fail(f"the worker exited with {self.process.returncode}:\n{self.log()[-4000:]}")
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s"
                " AND backend_start >= %s AND state = 'idle' AND query LIKE 'LISTEN %%'",
                [dispatcher.SESSION_DEFAULTS["application_name"], since],
            )
            return cursor.fetchone() is not None


def _database_now():
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        return cursor.fetchone()[0]


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05, failure=None):
    """Poll `predicate` until it returns a truthy value or `timeout` seconds pass (then fail, showing
    `failure()` if given)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout} s" + (f"\n{failure()[-4000:]}" if failure else ""))


@pytest.fixture
def celery_worker_process(transactional_db, settings):
    """Start a real worker on a private queue; tasks sent during the test go to it."""
    from config.celery import app

    queue = f"test-{uuid.uuid4().hex[:10]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.test_settings",
        "DATABASE_URL": database_url_for_test_db(),
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "CELERY_BROKER_URL": app.conf.broker_url,
    }
    previous_queue = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    worker = WorkerProcess(queue, env)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
        app.conf.task_default_queue = previous_queue
