"""The campaign admin: create with the API's validation, upload CSV and XLSX, the action buttons,
progress and results; the do-not-call CSV import; another tenant's campaign is a 404."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from openpyxl import Workbook

from calls.models import DoNotCallEntry
from campaigns.models import Campaign, CampaignRow
from tenants.models import Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, make_staff_user, tenant):
    client.force_login(make_staff_user("alice", tenant, Role.ADMIN))
    return client


def xlsx(rows: list[list]) -> bytes:
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_admin_validates_like_the_api(admin_client, tenant, agent, trunk):
    response = admin_client.post(
        "/admin/campaigns/campaign/add/",
        {
            "tenant": tenant.pk,
            "name": "Spring",
            "agent": agent.pk,
            "sip_trunk": trunk.pk,
            "calling_window": '{"days": ["someday"]}',
            "retry": "{}",
            "columns": "{}",
            "steps": "{}",
            "max_concurrent_calls": 5,
            "opt_out_dispositions": "[]",
        },
    )
    assert response.status_code == 200 and "calling_window.days must be" in response.content.decode()
    assert not Campaign.objects.exists()


def test_upload_xlsx_and_csv_then_start_and_download(admin_client, make_campaign):
    campaign = make_campaign()
    book = xlsx([["phone_number", "customer_id"], [14155552671, "A"], ["bad", "B"]])
    url = f"/admin/campaigns/campaign/{campaign.pk}/upload/"
    response = admin_client.post(url, {"file": SimpleUploadedFile("rows.xlsx", book)}, follow=True)
    page = response.content.decode()
    assert "1 rows accepted, 1 rejected: row 2: phone_number must be in E.164 format" in page
    assert CampaignRow.objects.get().phone_number == "+14155552671"
    csv = b"phone_number,customer_id\n+14155552672,C\n"
    admin_client.post(url, {"file": SimpleUploadedFile("rows.csv", csv)})
    assert CampaignRow.objects.count() == 2
    response = admin_client.post(f"/admin/campaigns/campaign/{campaign.pk}/do/start/", follow=True)
    campaign.refresh_from_db()
    assert campaign.status == "running" and "Campaign start: done." in response.content.decode()
    change = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()
    assert 'id="campaign-pause-button"' in change and "0 / 2 (0%)" in change
    refused = admin_client.post(url, {"file": SimpleUploadedFile("rows.csv", csv)}, follow=True).content.decode()
    assert "Upload refused: rows can be added only while the campaign is draft or paused" in refused
    results = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/results.csv")
    assert b"".join(results.streaming_content).decode("utf-8-sig").startswith("phone_number,customer_id,status")
    rows_page = admin_client.get(
        f"/admin/campaigns/campaignrow/?campaign__id__exact={campaign.pk}&status__exact=pending"
    )
    assert rows_page.status_code == 200 and "+14155552672" in rows_page.content.decode()


def test_a_bad_workbook_is_refused_whole(admin_client, make_campaign):
    campaign = make_campaign()
    url = f"/admin/campaigns/campaign/{campaign.pk}/upload/"
    response = admin_client.post(url, {"file": SimpleUploadedFile("rows.xlsx", b"PK\x03\x04 not a zip")}, follow=True)
    assert "Upload refused: the file is not a readable XLSX workbook" in response.content.decode()
    assert not CampaignRow.objects.exists()


def test_another_tenants_campaign_is_not_found(client, make_staff_user, other_tenant, make_campaign):
    campaign = make_campaign()
    client.force_login(make_staff_user("mallory", other_tenant, Role.ADMIN))
    assert client.post(f"/admin/campaigns/campaign/{campaign.pk}/do/start/").status_code == 404
    assert client.get(f"/admin/campaigns/campaign/{campaign.pk}/results.csv").status_code == 404


def test_do_not_call_csv_import(admin_client, tenant):
    content = b"phone_number;reason\n98765 43210;asked\nnope;\n+919876543210;again\n"
    response = admin_client.post(
        "/admin/calls/donotcallentry/import/",
        {"file": SimpleUploadedFile("dnc.csv", content), "region": "in"},
        follow=True,
    )
    assert "1 added, 0 already listed, 1 rejected: row 2" in response.content.decode()
    assert list(DoNotCallEntry.objects.values_list("tenant", "phone_number", "reason")) == [
        (tenant.pk, "+919876543210", "asked")
    ]
