"""The call dispatcher: a new call's first dialer step travels with its commit, not through the web's broker.

On PostgreSQL (with `CALLS_DISPATCHER` on) the statement that admits a call also runs
`pg_notify(CALLS_DISPATCH_CHANNEL, <call id>)` (`calls.admission`); PostgreSQL delivers a notification
when its transaction commits and never on rollback, so the web sends no broker message for the call.
In the Celery worker a `Dispatcher` thread (started by a worker bootstep, config/celery.py) holds one
connection of its own, LISTENs and sends `calls.advance_call` for each id through `tenants.queue.enqueue`.

- `notify_channel()` — the channel calls are announced on here, or None (SQLite, or the dispatcher
  off): then the web publishes the step on commit as before;
- `announce_on_commit(call)` — the one rule for a call admitted any other way (the locked path):
  NOTIFY in the current transaction when there is a channel, else publish on commit;
- `Dispatcher` — the listening thread; `for_worker()` builds the worker's from the settings.

Exactly one dispatcher per database is active: it holds a session-level advisory lock (keyed by the
channel); the others wait, trying it every 2 s, and one takes over when the holder's session ends. Nothing depends on a notification arriving: a call committed while no
dispatcher listened (none running, a reconnect, a broker failure) is still due, and the dialer sweep
(`calls.dialing.sweep_dialer`, every 2 s) sends it once it is a couple of seconds overdue; duplicates
are harmless (`calls.leases.claim`).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from typing import Any

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from psycopg import sql

from calls.models import Call
from tenants import queue

logger = logging.getLogger(__name__)

TASK = "calls.advance_call"
RETRY_SECONDS = 2.0  # a waiting dispatcher tries the lock this often
POLL_SECONDS = 1.0  # how soon a listening dispatcher notices it is asked to stop
MAX_BACKOFF_SECONDS = 30.0
# Its session's name; connect_timeout and the keepalives that notice a dead server in about 25 s even
# when no packet says so (a listening session is otherwise idle) come with the database OPTIONS
# (config.settings).
SESSION_DEFAULTS = {"application_name": "switchboard-call-dispatcher"}


def notify_channel() -> str | None:
    """The channel new calls are announced on, or None when the web publishes their first step itself."""
    if not settings.CALLS_DISPATCHER or connection.vendor != "postgresql":
        return None
    return str(settings.CALLS_DISPATCH_CHANNEL)


def announce_on_commit(call: Call) -> None:
    """Have `call`'s first dialer step sent once the current transaction commits (nothing on rollback)."""
    channel = notify_channel()
    if channel is None:
        queue.enqueue_on_commit(TASK, call.pk)
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, %s)", [channel, str(call.pk)])


def lock_key(channel: str) -> int:
    """The advisory lock (a signed 64-bit key) that makes one dispatcher per database and channel active."""
    digest = hashlib.sha256(f"switchboard.calls.dispatcher:{channel}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def connection_params(alias: str = DEFAULT_DB_ALIAS) -> dict[str, Any]:
    """psycopg connection arguments for a session of our own, from Django's DATABASES[alias]."""
    params = connections[alias].get_connection_params()
    for django_only in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(django_only, None)
    return {**SESSION_DEFAULTS, **params, "autocommit": True}


def for_worker() -> Dispatcher | None:
    """The dispatcher a Celery worker runs (not started), or None: dispatcher off, or not PostgreSQL."""
    channel = notify_channel()
    return None if channel is None else Dispatcher(connection_params(), channel)


class Dispatcher:
    """A daemon thread that turns the channel's notifications into `calls.advance_call` tasks.

    It never raises into its host: database errors reconnect with exponential backoff (1 s up to
    30 s), anything else is logged and retried the same way. `stop()` ends it within about a second.
    """

    def __init__(
        self,
        params: dict[str, Any],
        channel: str,
        *,
        retry_seconds: float = RETRY_SECONDS,
        poll_seconds: float = POLL_SECONDS,
        name: str = "calls-dispatcher",
    ) -> None:
        self.params = params
        self.channel = channel
        self.retry_seconds = retry_seconds
        self.poll_seconds = poll_seconds
        self.name = name
        self.dispatched = 0
        self._stopping = threading.Event()
        self._listening = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> bool:
        """True while this dispatcher holds the lock and listens."""
        return self._listening.is_set()

    def wait_active(self, timeout: float) -> bool:
        return self._listening.wait(timeout)

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop listening and close the session (which releases the lock for the next dispatcher)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        backoff = 1.0
        while not self._stopping.is_set():
            try:
                with psycopg.connect(**self.params) as session:
                    if self._serve(session):
                        backoff = 1.0  # it listened: a later failure starts the backoff afresh
            except psycopg.Error as exc:
                logger.warning(
                    "call dispatcher lost its database session; reconnecting in %.0f s",
                    backoff,
                    extra={"error": _first_line(exc)},
                )
            except Exception:
                logger.exception("call dispatcher failed; restarting in %.0f s", backoff)
            finally:
                self._listening.clear()
            if self._stopping.wait(backoff):
                break
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    def _serve(self, session: psycopg.Connection) -> bool:
        """Wait for the lock, LISTEN, dispatch until asked to stop; False if stopped before listening."""
        key = lock_key(self.channel)
        while not self._holds_lock(session, key):
            if self._stopping.wait(self.retry_seconds):
                return False
        session.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
        self._listening.set()
        logger.info("call dispatcher listening", extra={"channel": self.channel})
        while not self._stopping.is_set():
            for notification in session.notifies(timeout=self.poll_seconds):
                self._dispatch(notification.payload)
        return True

    @staticmethod
    def _holds_lock(session: psycopg.Connection, key: int) -> bool:
        row = session.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()
        return bool(row and row[0])

    def _dispatch(self, payload: str) -> None:
        try:
            call_id = uuid.UUID(payload)
        except ValueError:
            logger.warning(
                "call dispatcher ignored a notification that is not a call id", extra={"channel": self.channel}
            )
            return
        # A broker failure is logged by enqueue; the call stays due and the dialer sweep sends it.
        queue.enqueue(TASK, call_id)
        self.dispatched += 1


def _first_line(exc: BaseException) -> str:
    # libpq's messages name the host and the user, never the password; the first line says what failed.
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"
