"""Capacity under real concurrency (PostgreSQL only): many client processes and threads hit two web
servers at once — the threaded live_server and a gunicorn with 2 worker processes — and the database
shows that no trunk ever exceeded max_channels live calls nor max_cps starts in any one-second window.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import random
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest
from django.db import connection

from calls.models import Call, CallStatus
from calls.services import MAX_CHANNELS_MESSAGE, MAX_CPS_MESSAGE
from tests.calls.conftest import call_body, max_overlap, max_starts_in_one_second
from tests.support.http_servers import free_port
from tests.support.worker import ROOT, database_url_for_test_db, wait_for

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="capacity under concurrency is proven on PostgreSQL (row locks across processes); CI runs it there",
)

PROCESSES, THREADS, PER_THREAD = 4, 4, 4  # 64 requests


@pytest.fixture(scope="module")
def gunicorn_url(django_db_setup):
    """A gunicorn (2 processes x 4 threads) serving the project against the test database."""
    port = free_port()
    queue = f"test-capacity-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.test_settings",
        "DATABASE_URL": database_url_for_test_db(),
        "CELERY_TASK_DEFAULT_QUEUE": queue,  # nobody consumes it: accepted calls stay live
    }
    log = (ROOT / ".local" / "test-gunicorn.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", "2", "--threads", "4", "--worker-class", "gthread"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return urllib.request.urlopen(f"{url}/healthz", timeout=1).status == 200
        except OSError:
            return False

    try:
        wait_for(up, timeout=30, interval=0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


@pytest.fixture
def quiet_queue():
    """Tasks the live_server enqueues go to a queue nobody consumes (accepted calls stay live)."""
    from config.celery import app

    previous = app.conf.task_default_queue
    app.conf.task_default_queue = f"test-capacity-{uuid.uuid4().hex[:8]}"
    yield
    app.conf.task_default_queue = previous


def _fire(job: tuple) -> list[tuple[int, dict, str | None]]:
    """One client process: THREADS threads, each sending PER_THREAD POSTs, all starting at `start_at`."""
    urls, key, body, start_at, spread, idempotency_key = job
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    results: list = []
    lock = threading.Lock()

    def run(thread_no: int) -> None:
        time.sleep(max(0.0, start_at - time.time()))
        for n in range(PER_THREAD):
            if spread:
                time.sleep(random.uniform(0, spread))
            request = urllib.request.Request(
                urls[(thread_no + n) % len(urls)] + "/integration/v1/calls",
                data=json.dumps(body).encode(),
                headers=headers,
                method="POST",
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    outcome = (response.status, json.loads(response.read()), None)
            except urllib.error.HTTPError as exc:
                outcome = (exc.code, json.loads(exc.read()), exc.headers.get("Retry-After"))
            with lock:
                results.append(outcome)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def storm(urls: list[str], key: str, body: dict, spread: float = 0.0, idempotency_key: str = "") -> list[tuple]:
    start_at = time.time() + 0.5
    jobs = [(urls, key, body, start_at, spread, idempotency_key)] * PROCESSES
    with multiprocessing.get_context("fork").Pool(PROCESSES) as pool:
        return list(itertools.chain.from_iterable(pool.map(_fire, jobs)))


@pytest.mark.django_db(transaction=True)
def test_max_channels_holds_under_concurrency(
    live_server, gunicorn_url, quiet_queue, tenant, api_client_for, agent, make_trunk
):
    trunk = make_trunk(tenant, max_channels=5, max_cps=1000)
    key = api_client_for(tenant, "member").raw_key
    results = storm([live_server.url, gunicorn_url], key, call_body(agent, trunk))

    assert len(results) == PROCESSES * THREADS * PER_THREAD
    accepted = [body for status, body, _ in results if status == 201]
    rejected = [(body, retry) for status, body, retry in results if status == 429]
    assert len(accepted) == 5 and len(rejected) == len(results) - 5
    assert {body["error"] for body, _ in rejected} == {MAX_CHANNELS_MESSAGE}
    assert all(retry and int(retry) >= 1 for _, retry in rejected)
    live = list(Call.objects.filter(sip_trunk=trunk).exclude(started_at=None))
    assert len(live) == 5 and max_overlap(live) == 5
    assert Call.objects.filter(sip_trunk=trunk, status=CallStatus.REJECTED_CAPACITY).count() == len(rejected)


@pytest.mark.django_db(transaction=True)
def test_max_cps_holds_under_concurrency(
    live_server, gunicorn_url, quiet_queue, tenant, api_client_for, agent, make_trunk
):
    trunk = make_trunk(tenant, max_channels=1000, max_cps=3)
    key = api_client_for(tenant, "member").raw_key
    results = storm([live_server.url, gunicorn_url], key, call_body(agent, trunk), spread=0.3)

    accepted = [body for status, body, _ in results if status == 201]
    rejected = [(body, retry) for status, body, retry in results if status == 429]
    assert len(accepted) + len(rejected) == len(results)
    assert {body["error"] for body, _ in rejected} == {MAX_CPS_MESSAGE}
    assert {retry for _, retry in rejected} == {"1"}
    started = list(Call.objects.filter(sip_trunk=trunk).exclude(started_at=None))
    assert len(started) == len(accepted) >= 3
    assert max_starts_in_one_second(started) == 3


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_with_one_idempotency_key_place_one_call(
    live_server, gunicorn_url, quiet_queue, tenant, api_client_for, agent, trunk
):
    key = api_client_for(tenant, "member").raw_key
    results = storm([live_server.url, gunicorn_url], key, call_body(agent, trunk), idempotency_key="same-order")
    assert {status for status, _, _ in results} == {201}
    assert len({body["call_id"] for _, body, _ in results}) == 1
    assert Call.objects.filter(tenant=tenant).count() == 1


@pytest.mark.django_db(transaction=True)
def test_status_events_and_claims_never_wait_for_the_trunk_lock(tenant, agent, trunk):
    """A dialer event locks only its call row: were it to lock the joined agent and trunk rows too, it
    would queue behind (and deadlock with) admissions holding the trunk lock."""
    from django.db import connections, transaction

    from calls import dialing, events, services
    from calls.models import SipTrunk

    call = services.trigger_call(tenant, call_body(agent, trunk)).call
    locked, release = threading.Event(), threading.Event()

    def hold_the_trunk() -> None:
        with transaction.atomic():
            SipTrunk.objects.select_for_update().get(pk=trunk.pk)
            locked.set()
            release.wait(10)
        connections.close_all()

    holder = threading.Thread(target=hold_the_trunk)
    holder.start()
    try:
        assert locked.wait(5)
        started = time.monotonic()
        dialing.advance_call(call.pk)  # claims the call, places it: Ringing
        events.record_call_event(call, CallStatus.ANSWERED, "carrier")
        assert time.monotonic() - started < 5  # the holder keeps the lock for 10 s
    finally:
        release.set()
        holder.join()
    call.refresh_from_db()
    assert call.status == CallStatus.ANSWERED
