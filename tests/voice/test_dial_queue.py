"""Placing LiveKit calls runs on its own queue: a ringing phone never holds the worker that runs other work."""

from __future__ import annotations

import os
import uuid

import pytest

from calls.models import Call, CallStatus, SipTrunk
from tests.support.worker import WorkerProcess, wait_for
from tests.voice.conftest import trigger

pytestmark = pytest.mark.worker


@pytest.fixture
def dial_queue(monkeypatch):
    from config.celery import app

    name = f"test-dial-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("CALLS_DIAL_QUEUE", name)  # read by the worker processes' settings
    previous = app.conf.task_routes
    app.conf.task_routes = {"calls.livekit_dial": {"queue": name}}
    yield name
    app.conf.task_routes = previous


@pytest.fixture
def workers(dial_queue, celery_worker_process):
    """The default-queue worker of the suite, and a second worker consuming only the dial queue."""
    dialer = WorkerProcess(dial_queue, {**celery_worker_process.env, "CALLS_DIAL_QUEUE": dial_queue})
    dialer.start(wait_for_dispatcher=False)  # on PostgreSQL the default worker's dispatcher is the active one
    try:
        yield celery_worker_process, dialer
    finally:
        dialer.stop()


def test_a_ringing_livekit_call_does_not_block_other_calls(tenant, voice_agent, livekit_trunk, livekit_server, workers):
    default, dialer = workers
    assert os.environ["CALLS_DIAL_QUEUE"] == dialer.queue
    livekit_server.delays["CreateSIPParticipant"] = 8.0  # the phone rings for 8 s
    simulated = SipTrunk.objects.create(
        tenant=tenant,
        name="Sim",
        trunk_phone="+14155550100",
        dialer_config={"ring_seconds": 0.05, "talk_seconds": 0.1, "outcome": "completed"},
    )
    ringing = trigger(tenant, voice_agent, livekit_trunk).call
    wait_for(lambda: livekit_server.of("CreateSIPParticipant"), timeout=30)  # the phone is ringing now

    other = trigger(tenant, voice_agent, simulated, phone_number="+14155552672").call
    wait_for(lambda: Call.objects.get(pk=other.pk).status == CallStatus.COMPLETED, timeout=30)
    # The simulated call went through while the LiveKit call was still ringing.
    assert Call.objects.get(pk=ringing.pk).status == CallStatus.INITIATING

    wait_for(lambda: Call.objects.get(pk=ringing.pk).status == CallStatus.ANSWERED, timeout=30)
    # Celery logs "Task <name>[<id>] received" for each task a worker takes.
    assert "Task calls.livekit_dial[" in dialer.log()
    assert "Task calls.livekit_dial[" not in default.log()
    assert "Task calls.advance_call[" not in dialer.log()
    assert len(livekit_server.of("CreateSIPParticipant")) == 1
