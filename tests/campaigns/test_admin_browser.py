"""The campaign admin in a real browser (headless Chromium): upload a CSV, start, see the progress."""

from __future__ import annotations

from campaigns.models import Campaign, CampaignRow


def test_operator_uploads_rows_and_starts_a_campaign(
    page, admin_login, make_staff_user, tenant, make_campaign, tmp_path
):
    make_staff_user("operator", tenant, role="admin")
    campaign = make_campaign()
    upload = tmp_path / "rows.csv"
    upload.write_text("phone_number;customer_id\n+14155552671;A\nnot a number;B\n", encoding="utf-8")

    admin_login("operator")
    page.goto(f"/admin/campaigns/campaign/{campaign.pk}/change/")
    page.set_input_files("#campaign-upload-file", str(upload))
    page.click("#campaign-upload-button")
    message = page.locator(".messagelist").inner_text()
    assert "1 rows accepted, 1 rejected: row 2: phone_number must be in E.164 format" in message
    assert CampaignRow.objects.get().phone_number == "+14155552671"

    page.click("#campaign-start-button")
    assert "Campaign start: done." in page.locator(".messagelist").inner_text()
    assert Campaign.objects.get(pk=campaign.pk).status == "running"
    assert "0 / 1 (0%)" in page.locator(".field-progress").inner_text()
    page.screenshot(path=".local/campaigns-admin.png", full_page=True)

    page.click("#campaign-rows")
    assert "+14155552671" in page.locator("#result_list").inner_text()
