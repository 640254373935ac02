"""The README's production deploy, run as an operator would: separate processes, explicit secrets.

`Deployment` runs the documented commands (`manage.py migrate`, `collectstatic`, `check --deploy`,
`bootstrap_tenant`) and starts gunicorn (2 workers), a Celery worker and beat against a database of
its own, with the embedded broker and the database cache (no Redis). The processes get a clean
environment — production settings (`config.settings`, DEBUG off), the secrets given explicitly, a
`SWITCHBOARD_LOCAL_DIR` that does not exist yet — and nothing of the test run's own environment, so
nothing a test fixture or `make run` prepared can make it pass.

`postgres_database()` creates a fresh PostgreSQL database on the server the suite uses (or the
default local one) and drops it afterwards; `None` when no server answers.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from cryptography.fernet import Fernet

from tests.support.http_servers import free_port

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432/switchboard"
# What an operator's shell has; everything else the processes see is set explicitly below.
INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")
COMMAND_TIMEOUT = 180.0  # generous: the machine running the suite may be loaded


def settings_process(tmp_path, code: str, **overrides: str) -> subprocess.CompletedProcess:
    """`code` run by a fresh interpreter with config.settings, `overrides` and little else of this
    environment (the local folder is `tmp_path`)."""
    keep = {"PATH", "HOME", "LANG", "PYTHONPATH"}
    environment = {name: value for name, value in os.environ.items() if name in keep}
    environment.update(DJANGO_SETTINGS_MODULE="config.settings", SWITCHBOARD_LOCAL_DIR=str(tmp_path), **overrides)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )


class DeployFailed(AssertionError):
    pass


class Deployment:
    """One deployment in `workdir`: its environment, the set-up commands, and its running processes."""

    def __init__(self, workdir: Path, database_url: str, **settings: str) -> None:
        self.workdir = workdir
        self.local_dir = workdir / "local"  # not created: the app must create what it needs
        self.static_root = workdir / "static"
        self.env = {name: os.environ[name] for name in INHERITED if name in os.environ}
        self.env.update(
            DJANGO_SETTINGS_MODULE="config.settings",
            PYTHONPATH=str(ROOT),
            SECRET_KEY=secrets.token_urlsafe(50),
            FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
            SWITCHBOARD_LOCAL_DIR=str(self.local_dir),
            STATIC_ROOT=str(self.static_root),
            DATABASE_URL=database_url,
            ALLOWED_HOSTS="127.0.0.1",
            **settings,
        )
        self.processes: dict[str, subprocess.Popen] = {}
        self.url = ""
        self.owner_key = ""  # printed by bootstrap_tenant

    # set-up commands -----------------------------------------------------------------------------
    def manage(self, *args: str) -> str:
        """Run `python manage.py <args>`; its output, or a failure that shows it."""
        return self.run(sys.executable, "manage.py", *args)

    def run(self, *command: str) -> str:
        result = subprocess.run(
            command, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT
        )
        if result.returncode != 0:
            raise DeployFailed(f"{' '.join(command[1:])} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    # processes -----------------------------------------------------------------------------------
    def start(self, name: str, *command: str) -> subprocess.Popen:
        log = (self.workdir / f"{name}.log").open("wb")
        self.processes[name] = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        return self.processes[name]

    def start_web(self) -> str:
        """gunicorn as the README runs it (each worker its own socket, `--reuse-port`), on a free port:
        the workers bind it themselves, so a port the OS picks per bind would differ between them."""
        port = free_port()
        self.start(
            "web", sys.executable, "-m", "gunicorn", "config.wsgi", "-c", "python:config.gunicorn",
            "--workers", "2", "--threads", "4", "--reuse-port", "--bind", f"127.0.0.1:{port}",
            # gunicorn ≥ 27 opens a control socket in $HOME by default; one per deployment here.
            "--control-socket", str(self.workdir / "gunicorn.ctl"),
        )  # fmt: skip
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    def start_worker(self) -> None:
        self.start("worker", sys.executable, "-m", "celery", "-A", "config", "worker", "--concurrency", "2",
                   "--loglevel", "INFO")  # fmt: skip

    def start_beat(self) -> None:
        self.start("beat", sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO",
                   "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler")  # fmt: skip

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self) -> str:
        return "\n".join(f"----- {name} -----\n{self.log(name)[-6000:]}" for name in self.processes)

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise DeployFailed(f"the {name} process exited with {process.returncode}\n{self.logs()}")

    def wait_for(self, predicate: Callable[[], object], timeout: float = 60.0, interval: float = 0.2):
        """Poll `predicate` until it is truthy; fail early (with the logs) if a process has died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            value = predicate()
            if value:
                return value
            time.sleep(interval)
        raise DeployFailed(f"condition not met within {timeout} s\n{self.logs()}")

    def stop(self) -> None:
        """SIGTERM every process group (as a supervisor would), SIGKILL what has not exited after 15 s."""
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=15)


def postgres_server_url() -> str:
    """The PostgreSQL server the suite runs on (DATABASE_URL), else the default local one."""
    configured = os.environ.get("DATABASE_URL", "")
    return configured if configured.startswith(("postgres://", "postgresql://")) else DEFAULT_POSTGRES


@contextlib.contextmanager
def postgres_database() -> Iterator[str | None]:
    """A new, empty database on that server (dropped afterwards): its URL, or None if none answers."""
    import psycopg

    server = urlsplit(postgres_server_url())
    name = f"{server.path.lstrip('/') or 'switchboard'}_smoke_{uuid.uuid4().hex[:8]}"
    admin_url = urlunsplit(server._replace(path="/postgres"))
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError:
        yield None
        return
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield urlunsplit(server._replace(path=f"/{name}"))
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def require_or_skip(reason: str) -> None:
    """CI must run what it is given to run; elsewhere a missing server skips the test."""
    if os.environ.get("CI"):
        pytest.fail(f"CI must run this test but {reason}")
    pytest.skip(reason)
