"""Dispatch without a worker (the tasks' functions run inline): steps, windows, the do-not-call list,
retries, pause/resume, capacity, results. The worker-backed runs are in test_worker.py."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from calls import dnc
from calls.events import record_call_event
from calls.models import Call, CallStatus, DoNotCallEntry, WebhookDelivery
from campaigns import dispatch, lifecycle
from campaigns.models import CampaignRow
from tests.campaigns.conftest import add_rows, drive

pytestmark = pytest.mark.django_db

ROW = {"phone_number": "+14155552671", "customer_id": "C-17"}


def seed_steps(lookup, appointments, **after) -> dict:
    """Seed 000's flow: look the customer up before the call, book the appointment after it."""
    return {
        "before_call": [
            {
                "type": "api_call",
                "endpoint": str(lookup.pk),
                "params": {"customerId": "{{row.customer_id}}"},
                "map": {"customer_name": "customer.name"},
                "on_error": "fail",
            }
        ],
        "after_call": [{"type": "api_call", "endpoint": str(appointments.pk), "on_error": "fail", **after}],
    }


@pytest.fixture
def seed_endpoints(make_endpoint, http_server):
    http_server.route("GET", "/customers/C-17", lambda r: (200, {}, {"customer": {"name": "Rahul"}}))
    http_server.route("POST", "/appointments", lambda r: (201, {}, {"id": "A1"}))
    lookup = make_endpoint(
        name="lookup",
        path="/customers/{customerId}",
        parameters=[{"name": "customerId", "in": "path", "location": "path", "type": "string", "required": True}],
    )
    appointments = make_endpoint(
        name="appointments",
        method="POST",
        path="/appointments",
        body_type="json",
        body_template=(
            '{"customerId": "{{row.customer_id}}", "name": "{{variables.customer_name}}",'
            ' "date": "{{extracted.preferred_date}}", "time": "{{extracted.preferred_time}}",'
            ' "classification": "{{ai_classification}}", "call": "{{call.id}}", "status": "{{call.status}}"}'
        ),
    )
    return lookup, appointments


def dial_all(campaign) -> list[CampaignRow]:
    dispatch.dispatch_campaign(campaign.pk)
    for row in CampaignRow.objects.filter(campaign=campaign, status="calling"):
        dispatch.dial_row(row.pk)
    return list(CampaignRow.objects.filter(campaign=campaign).order_by("row"))


def test_seed_flow_before_and_after_the_call(make_campaign, seed_endpoints, http_server):
    lookup, appointments = seed_endpoints
    campaign = make_campaign(steps=seed_steps(lookup, appointments), callback_url=http_server.url("/hook"))
    add_rows(campaign, ROW)
    lifecycle.start(campaign)
    (row,) = dial_all(campaign)
    call = row.call
    assert row.status == "calling" and row.variables == {"customer_name": "Rahul"}
    assert call.metadata == {"phone_number": "+14155552671", "customer_id": "C-17", "customer_name": "Rahul"}
    assert call.idempotency_key == f"campaign-row:{row.pk}:attempt:1"
    outcome = {
        "disposition": "interested",
        "summary": "Booked.",
        "sentiment": "positive",
        "extracted": {"preferred_date": "2026-06-20", "preferred_time": "17:00"},
    }
    record_call_event(call, CallStatus.COMPLETED, "test", call_outcome=outcome, duration=42)
    lifecycle.finish_row(row.pk, call.pk)
    booked = json.loads(http_server.requests[-1].body)
    assert booked == {
        "customerId": "C-17",
        "name": "Rahul",
        "date": "2026-06-20",
        "time": "17:00",
        "classification": "interested",
        "call": str(call.pk),
        "status": "Completed",
    }
    row.refresh_from_db()
    assert (row.status, row.disposition, row.extracted) == ("completed", "interested", outcome["extracted"])
    payload = json.loads(WebhookDelivery.objects.get(call=call).payload)
    assert payload["campaign_id"] == str(campaign.pk) and payload["event"] == "call.completed"
    assert payload["row"] == {"id": str(row.pk), "number": 1, "data": ROW}
    dispatch.dispatch_campaign(campaign.pk)
    campaign.refresh_from_db()
    assert campaign.status == "completed"
    done = json.loads(WebhookDelivery.objects.get(event="campaign.completed").payload)
    assert done["counts"]["completed"] == 1 and done["outcomes"] == {"interested": 1}


def test_fail_before_the_call_places_no_call(make_campaign, seed_endpoints, http_server):
    lookup, appointments = seed_endpoints
    http_server.route("GET", "/customers/C-17", lambda r: (500, {}, "down"))
    campaign = make_campaign(steps=seed_steps(lookup, appointments))
    add_rows(campaign, ROW)
    lifecycle.start(campaign)
    (row,) = dial_all(campaign)
    assert (row.status, row.reason) == ("failed", "step_failed")
    assert "lookup: HTTP 500" in row.error
    assert not Call.objects.exists()


def test_branch_runs_the_alternative_and_continue_carries_on(make_campaign, make_endpoint, http_server):
    http_server.route("GET", "/primary", lambda r: (503, {}, "no"))
    http_server.route("GET", "/fallback", lambda r: (200, {}, {"name": "From fallback"}))
    http_server.route("GET", "/optional", lambda r: (404, {}, "none"))
    primary = make_endpoint(name="primary", path="/primary")
    fallback = make_endpoint(name="fallback", path="/fallback")
    optional = make_endpoint(name="optional", path="/optional")
    steps = {
        "before_call": [
            {
                "type": "api_call",
                "endpoint": str(primary.pk),
                "on_error": "branch",
                "branch": [{"type": "api_call", "endpoint": str(fallback.pk), "map": {"customer_name": "name"}}],
            },
            {"type": "api_call", "endpoint": str(optional.pk), "on_error": "continue"},
        ]
    }
    campaign = make_campaign(steps=steps)
    add_rows(campaign, ROW)
    lifecycle.start(campaign)
    (row,) = dial_all(campaign)
    assert row.call is not None and row.variables == {"customer_name": "From fallback"}
    assert [r.path for r in http_server.requests] == ["/primary", "/fallback", "/optional"]


def test_only_if_skips_after_call_steps_that_do_not_apply(make_campaign, seed_endpoints, http_server):
    lookup, appointments = seed_endpoints
    steps = seed_steps(lookup, appointments, only_if={"disposition": ["interested"]})
    campaign = make_campaign(steps=steps)
    add_rows(campaign, ROW)
    lifecycle.start(campaign)
    (row,) = dial_all(campaign)
    record_call_event(row.call, CallStatus.COMPLETED, "test", call_outcome={"disposition": "not_interested"})
    lifecycle.finish_row(row.pk, row.call_id)
    assert http_server.count("/appointments") == 0
    row.refresh_from_db()
    assert row.status == "completed" and row.disposition == "not_interested"


def window_around(zone: str, now: datetime) -> dict:
    local = now.astimezone(ZoneInfo(zone))
    start, end = local - timedelta(minutes=90), local + timedelta(minutes=90)
    return {
        "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        "start": start.strftime("%H:%M"),
        "end": end.strftime("%H:%M"),
    }


def test_the_window_is_in_each_contacts_local_time(make_campaign):
    now = timezone.now()
    campaign = make_campaign(calling_window=window_around("America/New_York", now))
    add_rows(
        campaign,
        {"phone_number": "+12125550100", "customer_id": "ny"},  # New York: inside
        {"phone_number": "+14155552671", "customer_id": "tokyo", "timezone": "Asia/Tokyo"},  # its own column: outside
        {"phone_number": "+18005550100", "customer_id": "tollfree"},  # every US zone: the window must hold in all
    )
    lifecycle.start(campaign)
    rows = dial_all(campaign)
    assert [(r.data["customer_id"], r.status) for r in rows] == [
        ("ny", "calling"),
        ("tokyo", "pending"),
        ("tollfree", "pending"),
    ]
    assert rows[1].zone_key == "Asia/Tokyo" and "Pacific/Honolulu" in rows[2].zone_key.split("|")
    assert Call.objects.count() == 1


def test_unknown_zone_uses_the_campaign_timezone_else_is_skipped(make_campaign):
    campaign = make_campaign(default_region="GB")
    add_rows(campaign, {"phone_number": "+14155552671", "customer_id": "1"})
    CampaignRow.objects.update(zone_key="")
    campaign.zone_keys = [""]
    campaign.save()
    lifecycle.start(campaign)
    (row,) = dial_all(campaign)
    assert (row.status, row.reason) == ("skipped", "unknown_timezone")


def test_do_not_call_is_checked_at_dial_time(make_campaign, tenant):
    campaign = make_campaign()
    add_rows(campaign, ROW, {"phone_number": "+14155552672", "customer_id": "2"})
    dnc.add_number(tenant, "+14155552671", "asked")  # after the upload
    lifecycle.start(campaign)
    rows = dial_all(campaign)
    assert [(r.status, r.reason) for r in rows] == [("skipped", "do_not_call"), ("calling", "")]
    assert list(Call.objects.values_list("phone_number", flat=True)) == ["+14155552672"]


def test_an_opt_out_disposition_lists_the_number(make_campaign, tenant):
    campaign = make_campaign(opt_out_dispositions=["do_not_call"])
    add_rows(campaign, ROW)
    lifecycle.start(campaign)
    (row,) = dial_all(campaign)
    record_call_event(row.call, CallStatus.COMPLETED, "test", call_outcome={"disposition": "do_not_call"})
    lifecycle.finish_row(row.pk, row.call_id)
    assert dnc.is_listed(tenant, "+14155552671")


def test_retries_on_decline_after_the_delay_then_attempts_exhausted(make_campaign, trunk):
    trunk.dialer_config = {"ring_seconds": 0, "talk_seconds": 0, "outcome": "declined"}
    trunk.save()
    campaign = make_campaign(retry={"max_attempts": 2, "delay_minutes": 0.02, "on": ["Decline"]})
    add_rows(campaign, ROW)
    lifecycle.start(campaign)
    drive(campaign, rounds=1)
    row = CampaignRow.objects.get()
    assert (row.status, row.attempts) == ("pending", 1)
    first = row.call
    assert row.next_attempt_at >= first.end_timestamp + timedelta(seconds=1.1)
    dispatch.dispatch_campaign(campaign.pk)
    assert CampaignRow.objects.get().status == "pending"  # not due yet
    CampaignRow.objects.update(next_attempt_at=timezone.now())
    drive(campaign)
    row.refresh_from_db()
    assert (row.status, row.reason, row.attempts) == ("failed", "attempts_exhausted", 2)
    keys = sorted(Call.objects.values_list("idempotency_key", flat=True))
    assert keys == [f"campaign-row:{row.pk}:attempt:1", f"campaign-row:{row.pk}:attempt:2"]


def test_capacity_refusal_waits_without_counting_an_attempt(make_campaign, trunk):
    trunk.max_cps = 1
    trunk.save()
    campaign = make_campaign()
    add_rows(campaign, ROW, {"phone_number": "+14155552672", "customer_id": "2"})
    lifecycle.start(campaign)
    dispatch.dispatch_campaign(campaign.pk)
    assert CampaignRow.objects.filter(status="calling").count() == 1  # the dispatcher paces to max_cps
    rows = list(CampaignRow.objects.order_by("row"))
    # A second claim racing the admission: the trunk refuses it and the row waits, attempt not counted.
    CampaignRow.objects.filter(pk=rows[1].pk).update(status="calling", attempts=1)
    for row in rows:
        dispatch.dial_row(row.pk)
    waiting = CampaignRow.objects.get(pk=rows[1].pk)
    assert (waiting.status, waiting.attempts) == ("pending", 0)
    assert waiting.next_attempt_at > timezone.now()
    assert Call.objects.count() == 1  # no rejected call recorded for a campaign's pacing


def test_pause_stops_new_calls_and_resume_continues(make_campaign, trunk):
    campaign = make_campaign(max_concurrent_calls=1)
    add_rows(campaign, ROW, {"phone_number": "+14155552672", "customer_id": "2"})
    lifecycle.start(campaign)
    dial_all(campaign)
    lifecycle.pause(campaign)
    call = Call.objects.get()
    record_call_event(call, CallStatus.COMPLETED, "test")
    first = CampaignRow.objects.get(call=call)
    lifecycle.finish_row(first.pk, call.pk)
    dial_all(campaign)
    assert Call.objects.count() == 1
    assert CampaignRow.objects.get(pk=first.pk).status == "completed"
    lifecycle.resume(campaign)
    dial_all(campaign)
    assert Call.objects.count() == 2


def test_end_at_expires_rows_not_reached(make_campaign):
    campaign = make_campaign(end_at=timezone.now() - timedelta(seconds=1))
    add_rows(campaign, ROW)
    lifecycle.start(campaign)
    dispatch.dispatch_campaign(campaign.pk)
    row = CampaignRow.objects.get()
    assert (row.status, row.reason) == ("skipped", "expired")
    campaign.refresh_from_db()
    assert campaign.status == "completed"


def test_a_crash_after_placing_the_call_links_it_instead_of_dialling_again(make_campaign):
    campaign = make_campaign()
    add_rows(campaign, ROW)
    lifecycle.start(campaign)
    dial_all(campaign)
    # As if the worker died after trigger_call committed but before the row recorded its call.
    CampaignRow.objects.update(call=None, lease_until=timezone.now() - timedelta(seconds=1))
    dispatch.dispatch_campaign(campaign.pk)  # recovery re-enqueues; run the task inline
    dispatch.dial_row(CampaignRow.objects.get().pk)
    assert Call.objects.count() == 1
    assert CampaignRow.objects.get().call == Call.objects.get()


def test_results_csv_columns(clients, make_campaign, seed_endpoints, http_server):
    lookup, appointments = seed_endpoints
    campaign = make_campaign(steps=seed_steps(lookup, appointments))
    add_rows(campaign, ROW, {"phone_number": "+14155552672", "customer_id": "=cmd()"})
    lifecycle.start(campaign)
    rows = dial_all(campaign)
    outcome = {"disposition": "interested", "summary": "Booked.", "extracted": {"preferred_date": "2026-06-20"}}
    record_call_event(rows[0].call, CallStatus.COMPLETED, "test", call_outcome=outcome)
    lifecycle.finish_row(rows[0].pk, rows[0].call_id)
    response = clients["viewer"].get(f"/api/v1/campaigns/{campaign.pk}/results.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == [
        "phone_number",
        "customer_id",
        "status",
        "reason",
        "attempts",
        "call_id",
        "call_status",
        "disposition",
        "summary",
        "extracted.preferred_date",
        "variables.customer_name",
        "error",
    ]
    assert table[1] == [
        "+14155552671",
        "C-17",
        "completed",
        "",
        "1",
        str(rows[0].call_id),
        "Completed",
        "interested",
        "Booked.",
        "2026-06-20",
        "Rahul",
        "",
    ]
    assert table[2][1] == "'=cmd()" and table[2][2] == "failed"


def test_do_not_call_api_and_the_call_api_refusal(clients, tenant, agent, trunk):
    admin = clients["admin"]
    created = admin.post("/api/v1/do-not-call", {"phone_number": "+1 415 555 2671", "reason": "asked"}, format="json")
    assert created.status_code == 201 and created.json()["phone_number"] == "+14155552671"
    assert admin.post("/api/v1/do-not-call", {"phone_number": "12"}, format="json").status_code == 400
    assert clients["viewer"].get("/api/v1/do-not-call").json()["count"] == 1
    body = {
        "phone_number": "+14155552671",
        "agent_id": str(agent.pk),
        "sip_trunk_id": str(trunk.pk),
        "metadata": {"customer_id": "1"},
    }
    refused = clients["member"].post("/integration/v1/calls", body, format="json")
    assert refused.status_code == 400 and refused.json() == {"error": "phone_number is on the do-not-call list"}
    assert not Call.objects.exists()
    assert admin.delete(f"/api/v1/do-not-call/{created.json()['id']}").status_code == 204
    assert clients["member"].post("/integration/v1/calls", body, format="json").status_code == 201
    assert not DoNotCallEntry.objects.exists()


def test_window_helpers_across_midnight():
    from campaigns.zones import open_in

    window = {"days": ["fri"], "start": "22:00", "end": "02:00"}
    friday_late = datetime(2026, 6, 12, 23, 30, tzinfo=UTC)
    saturday_early = datetime(2026, 6, 13, 1, 30, tzinfo=UTC)
    saturday_late = datetime(2026, 6, 13, 23, 30, tzinfo=UTC)
    assert open_in("UTC", window, friday_late) and open_in("UTC", window, saturday_early)
    assert not open_in("UTC", window, saturday_late)


def test_a_retry_step_tries_a_500_again_within_the_connections_policy(
    make_campaign, make_endpoint, http_server, connection
):
    answers = iter([(500, {}, "down"), (200, {}, {"name": "Second try"})])
    http_server.route("GET", "/flaky", lambda r: next(answers))
    connection.retry = {"max_retries": 1, "base_delay": 0.01, "max_delay": 0.05}
    connection.save()
    flaky = make_endpoint(name="flaky", path="/flaky")
    steps = {
        "before_call": [{"type": "api_call", "endpoint": str(flaky.pk), "on_error": "retry", "map": {"who": "name"}}]
    }
    campaign = make_campaign(steps=steps)
    add_rows(campaign, ROW)
    lifecycle.start(campaign)
    (row,) = dial_all(campaign)
    assert http_server.count("/flaky") == 2
    assert row.variables == {"who": "Second try"} and row.call is not None
