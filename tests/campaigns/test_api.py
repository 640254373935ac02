"""/api/v1/campaigns: CRUD with validation, row uploads (CSV, JSON) with their reports, the actions."""

from __future__ import annotations

import pytest

from campaigns.models import Campaign, CampaignRow

pytestmark = pytest.mark.django_db


def body(agent, trunk, **extra) -> dict:
    return {"name": "Spring", "agent": str(agent.pk), "sip_trunk": str(trunk.pk), **extra}


def test_create_read_and_defaults(clients, agent, trunk):
    response = clients["admin"].post("/api/v1/campaigns", body(agent, trunk, default_region="IN"), format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["status"] == "draft"
    assert data["calling_window"] == {
        "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        "start": "09:00",
        "end": "20:00",
    }
    assert data["retry"] == {
        "max_attempts": 3,
        "delay_minutes": 60,
        "on": ["Decline", "SIP Call Failed", "Trigger Failed"],
    }
    assert data["max_concurrent_calls"] == 10
    assert data["counts"] == {"pending": 0, "calling": 0, "completed": 0, "failed": 0, "skipped": 0}
    assert clients["viewer"].get(f"/api/v1/campaigns/{data['id']}").json()["default_region"] == "IN"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"calling_window": {"days": ["mon"], "start": "9am", "end": "20:00"}}, "calling_window.start must be"),
        ({"calling_window": {"days": ["funday"]}}, "calling_window.days must be"),
        ({"retry": {"max_attempts": 0}}, "retry.max_attempts must be"),
        ({"retry": {"on": ["Completed?"]}}, "retry.on must be"),
        ({"default_region": "XX"}, "default_region must be"),
        ({"timezone": "Mars/Olympus"}, "timezone must be an IANA"),
        ({"max_concurrent_calls": 0}, "max_concurrent_calls must be"),
        ({"steps": {"before_call": [{"type": "api_call", "endpoint": "nope"}]}}, "endpoint must be the id"),
        ({"steps": {"during": []}}, "steps must be"),
        ({"callback_url": "ftp://x"}, "callback_url"),
        ({"start_at": "2026-06-02T00:00:00Z", "end_at": "2026-06-01T00:00:00Z"}, "end_at must be after start_at"),
        ({"status": "running"}, "Unknown field"),
    ],
)
def test_bad_configuration_is_a_clear_400(clients, agent, trunk, extra, message):
    response = clients["admin"].post("/api/v1/campaigns", body(agent, trunk, **extra), format="json")
    assert response.status_code == 400
    assert message in str(response.json()), response.json()
    assert not Campaign.objects.exists()


def test_a_step_endpoint_of_another_tenant_is_refused(clients, agent, trunk, other_tenant):
    from integrations.models import Connection, Endpoint

    theirs = Connection.objects.create(tenant=other_tenant, name="Theirs", base_url="https://example.com")
    endpoint = Endpoint.objects.create(tenant=other_tenant, connection=theirs, name="x", tool_name="x")
    steps = {"before_call": [{"type": "api_call", "endpoint": str(endpoint.pk)}]}
    response = clients["admin"].post("/api/v1/campaigns", body(agent, trunk, steps=steps), format="json")
    assert response.status_code == 400 and "one of your endpoints" in response.json()["error"]


def test_roles_and_other_tenants(clients, other_client, make_campaign):
    campaign = make_campaign()
    assert clients["member"].post(f"/api/v1/campaigns/{campaign.pk}/start").status_code == 403
    assert other_client.get(f"/api/v1/campaigns/{campaign.pk}").status_code == 404
    assert (
        other_client.post(f"/api/v1/campaigns/{campaign.pk}/rows", "phone\n", content_type="text/csv").status_code
        == 404
    )


CSV = (
    "\ufeffphone;customer_id;name\n"
    "+919876543210;C1;Asha\n"
    "98765 43211;C2;Ravi\n"
    "12345;C3;Bad\n"
    ";C4;Nobody\n"
    "+919876543210;C5;Twice\n"
    "+919876543212;;NoId\n"
)


def test_csv_upload_accepts_row_by_row_with_a_report(clients, make_campaign):
    campaign = make_campaign(default_region="IN", columns={"phone_number": "phone"})
    response = clients["admin"].post(f"/api/v1/campaigns/{campaign.pk}/rows", CSV.encode(), content_type="text/csv")
    assert response.status_code == 201, response.json()
    assert response.json() == {
        "accepted": 3,
        "rejected": [
            {"row": 3, "error": "phone_number must be in E.164 format"},
            {"row": 4, "error": "phone_number is required"},
            {"row": 5, "error": "duplicate phone_number in this campaign"},
        ],
    }
    rows = list(CampaignRow.objects.filter(campaign=campaign).order_by("row"))
    assert [r.phone_number for r in rows] == ["+919876543210", "+919876543211", "+919876543212"]
    assert rows[1].data == {"phone": "98765 43211", "customer_id": "C2", "name": "Ravi"}
    assert rows[0].zone_key == "Asia/Calcutta" or rows[0].zone_key == "Asia/Kolkata"
    listed = clients["viewer"].get(f"/api/v1/campaigns/{campaign.pk}/rows?status=pending").json()
    assert listed["count"] == 3 and listed["results"][0]["row"] == 1


def test_a_missing_required_metadata_key_rejects_the_row(clients, make_campaign):
    campaign = make_campaign()
    payload = {"rows": [{"phone_number": "+14155552671"}, {"phone_number": "+14155552672", "customer_id": "7"}]}
    response = clients["admin"].post(f"/api/v1/campaigns/{campaign.pk}/rows", payload, format="json")
    assert response.json() == {
        "accepted": 1,
        "rejected": [{"row": 1, "error": "metadata missing required keys: customer_id"}],
    }


@pytest.mark.parametrize(
    ("content", "content_type", "status", "message"),
    [
        (b"\xff\xfe\x00bad", "text/csv", 400, "UTF-8"),
        (b"", "text/csv", 400, "no header row"),
        (b"phone,phone\n+14155552671,+14155552672\n", "text/csv", 400, "duplicate column names"),
        (b'{"rows": "x"}', "application/json", 400, '{"rows"'),
        (b"{not json", "application/json", 400, "malformed JSON"),
        (b"phone\n", "application/xml", 415, "text/csv"),
    ],
)
def test_a_bad_file_is_refused_whole(clients, make_campaign, content, content_type, status, message):
    campaign = make_campaign()
    response = clients["admin"].post(f"/api/v1/campaigns/{campaign.pk}/rows", content, content_type=content_type)
    assert response.status_code == status and message in response.json()["error"]
    assert not CampaignRow.objects.exists()


def test_upload_limits(clients, make_campaign, settings, monkeypatch):
    from campaigns import importing

    campaign = make_campaign()
    settings.CAMPAIGN_UPLOAD_MAX_BYTES = 2_000_000
    settings.API_LARGE_BODY_PATHS = [(r"^/api/v1/campaigns/[^/]+/rows/?$", 2_000_000)]
    big = b"phone_number,customer_id\n" + b"+14155552671,x\n" * 150_000
    response = clients["admin"].post(f"/api/v1/campaigns/{campaign.pk}/rows", big, content_type="text/csv")
    assert response.status_code == 413
    monkeypatch.setattr(importing, "MAX_ROWS", 2)
    rows = "".join(f"+1415555267{i},c\n" for i in range(3))
    response = clients["admin"].post(
        f"/api/v1/campaigns/{campaign.pk}/rows", f"phone_number,customer_id\n{rows}", content_type="text/csv"
    )
    assert response.status_code == 413 and "at most 2 rows" in response.json()["error"]
    assert not CampaignRow.objects.exists()


def test_actions_and_their_conflicts(clients, make_campaign, agent):
    campaign = make_campaign()
    admin = clients["admin"]
    assert (
        admin.post(f"/api/v1/campaigns/{campaign.pk}/start").json()["error"]
        == "The campaign has no rows: upload some first"
    )
    admin.post(
        f"/api/v1/campaigns/{campaign.pk}/rows",
        {"rows": [{"phone_number": "+14155552671", "customer_id": "1"}]},
        format="json",
    )
    agent.status = "inactive"
    agent.save()
    assert admin.post(f"/api/v1/campaigns/{campaign.pk}/start").json()["error"] == "Agent is not active"
    agent.status = "active"
    agent.save()
    assert admin.post(f"/api/v1/campaigns/{campaign.pk}/start").json()["status"] == "running"
    assert admin.patch(f"/api/v1/campaigns/{campaign.pk}", {"name": "x"}, format="json").status_code == 409
    assert admin.post(f"/api/v1/campaigns/{campaign.pk}/resume").status_code == 409
    rows = admin.post(f"/api/v1/campaigns/{campaign.pk}/rows", {"rows": []}, format="json")
    assert rows.status_code == 409
    assert admin.post(f"/api/v1/campaigns/{campaign.pk}/pause").json()["status"] == "paused"
    assert admin.post(f"/api/v1/campaigns/{campaign.pk}/resume").json()["status"] == "running"
    cancelled = admin.post(f"/api/v1/campaigns/{campaign.pk}/cancel").json()
    assert cancelled["status"] == "cancelled" and cancelled["counts"]["skipped"] == 1
    assert CampaignRow.objects.get().reason == "cancelled"
    assert admin.post(f"/api/v1/campaigns/{campaign.pk}/start").status_code == 409


def test_xlsx_upload_through_the_api_and_a_file_over_the_row_limit(clients, make_campaign, monkeypatch):
    from campaigns import importing
    from tests.campaigns.test_admin import xlsx

    campaign = make_campaign()
    book = xlsx([["phone_number", "customer_id"], ["+14155552671", "A"], [14155552672, "B"]])
    xlsx_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    response = clients["admin"].post(f"/api/v1/campaigns/{campaign.pk}/rows", book, content_type=xlsx_type)
    assert response.json() == {"accepted": 2, "rejected": []}
    monkeypatch.setattr(importing, "MAX_ROWS", 3)
    bad = "phone_number,customer_id\n" + "nope,x\n" * 4  # rejected rows count too: the file is too long
    response = clients["admin"].post(f"/api/v1/campaigns/{campaign.pk}/rows", bad, content_type="text/csv")
    assert response.status_code == 413 and response.json()["error"] == "a file holds at most 3 rows"
    assert CampaignRow.objects.count() == 2
