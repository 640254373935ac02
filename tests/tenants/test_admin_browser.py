"""The admin in a real browser (headless Chromium): tenant scoping and API key creation (SPEC §12)."""

from __future__ import annotations

import json
import urllib.request

from tenants.models import Role
from tenants.services import create_api_key, rotate_webhook_secret


def api_get(base_url: str, path: str, raw_key: str) -> tuple[int, dict]:
    request = urllib.request.Request(base_url + path, headers={"Authorization": f"Bearer {raw_key}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def test_staff_user_sees_only_their_tenants_objects(page, admin_login, tenant, other_tenant, make_staff_user):
    # given two tenants, each with a key and a rotation in its audit trail
    create_api_key(tenant, name="acme-deploy-key")
    create_api_key(other_tenant, name="globex-secret-key")
    rotate_webhook_secret(tenant)
    rotate_webhook_secret(other_tenant)
    make_staff_user("olga", tenant, Role.OWNER)
    # when the owner of the first logs in and opens API keys and audit events
    admin_login("olga")
    page.goto("/admin/tenants/apikey/")
    keys = page.locator("#result_list").inner_text()
    page.goto("/admin/tenants/auditevent/")
    events = page.locator("#result_list").inner_text()
    # then only their tenant's objects are listed
    assert "acme-deploy-key" in keys and "globex-secret-key" not in keys
    assert "Acme" in events and "Globex" not in events
    assert "acme-deploy-key" in events and "globex-secret-key" not in events


def test_creating_an_api_key_shows_it_once_and_it_works(page, admin_login, tenant, make_staff_user):
    # given a staff owner in the admin
    make_staff_user("olga", tenant, Role.OWNER)
    admin_login("olga")
    # when they add an API key through the form
    page.goto("/admin/tenants/apikey/add/")
    page.fill("#id_name", "made in the browser")
    page.select_option("#id_role", "owner")
    page.click("input[name=_save]")
    # then the raw key is shown on the result page
    raw = page.locator("#raw-api-key").inner_text().strip()
    assert raw.startswith("swb_") and len(raw) == 47
    # and it authenticates against the API
    status, body = api_get(page.base_url, "/api/v1/api-keys", raw)
    assert status == 200
    assert [item["name"] for item in body["results"]] == ["made in the browser"]
    # and the list page does not show it again
    page.click("text=Done")
    page.wait_for_url("**/admin/tenants/apikey/")
    assert raw not in page.content()
    assert "made in the browser" in page.locator("#result_list").inner_text()
