"""Campaigns on a real Celery worker: the chain of nudges drives a campaign to the end, concurrency
never passes max_concurrent_calls, and a worker killed mid-dispatch dials no row twice."""

from __future__ import annotations

import threading
import time

import pytest

from calls.models import LIVE_STATUSES, Call
from campaigns.models import Campaign, CampaignRow
from tenants.queue import enqueue
from tests.campaigns.conftest import add_rows
from tests.support.worker import WorkerProcess, wait_for

pytestmark = pytest.mark.worker


def rows(n: int) -> list[dict]:
    return [{"phone_number": f"+1415555{2600 + i}", "customer_id": str(i)} for i in range(n)]


def test_concurrency_never_exceeds_max_concurrent_calls(calls_worker, clients, make_campaign, trunk):
    trunk.dialer_config = {"ring_seconds": 0.05, "talk_seconds": 0.3, "outcome": "completed"}
    trunk.save()
    campaign = make_campaign(max_concurrent_calls=2)
    add_rows(campaign, *rows(8))
    peak, stop = [0], threading.Event()

    def watch():
        while not stop.is_set():
            live = Call.objects.filter(sip_trunk=trunk, status__in=LIVE_STATUSES).count()
            calling = CampaignRow.objects.filter(campaign=campaign, status="calling").count()
            peak[0] = max(peak[0], live, calling)
            time.sleep(0.01)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        assert clients["admin"].post(f"/api/v1/campaigns/{campaign.pk}/start").status_code == 200
        wait_for(lambda: Campaign.objects.get(pk=campaign.pk).status == "completed", timeout=60)
    finally:
        stop.set()
        watcher.join()
    assert peak[0] == 2
    assert CampaignRow.objects.filter(campaign=campaign, status="completed").count() == 8
    assert Call.objects.count() == 8


def test_a_worker_killed_mid_dispatch_dials_no_row_twice(
    fast_calls, celery_worker_process, monkeypatch, http_server, make_campaign, make_endpoint
):
    entered = threading.Event()

    def slow(request):
        entered.set()
        threading.Event().wait(3)  # the worker is killed while it waits here
        return 200, {}, {"name": "Slow"}

    http_server.route("GET", "/slow", slow)
    step = make_endpoint(name="slow", path="/slow", read_timeout=5)
    campaign = make_campaign(
        max_concurrent_calls=3,
        steps={"before_call": [{"type": "api_call", "endpoint": str(step.pk), "map": {"who": "name"}}]},
    )
    add_rows(campaign, *rows(3))
    from campaigns import lifecycle

    lifecycle.start(campaign)  # enqueues campaigns.dispatch on commit
    assert entered.wait(30), "the worker never reached the before-call step"
    celery_worker_process.kill()
    assert not Call.objects.exists()
    replacement = WorkerProcess(celery_worker_process.queue, {**celery_worker_process.env})
    replacement.start()
    try:
        http_server.route("GET", "/slow", lambda r: (200, {}, {"name": "Quick"}))

        def settled():
            enqueue("campaigns.tick")  # what beat does every second
            return Campaign.objects.get(pk=campaign.pk).status == "completed"

        wait_for(settled, timeout=90, interval=0.5)
    finally:
        replacement.stop()
    done = list(CampaignRow.objects.filter(campaign=campaign))
    assert [r.status for r in done] == ["completed"] * 3
    for row in done:
        assert Call.objects.filter(phone_number=row.phone_number).count() == 1
