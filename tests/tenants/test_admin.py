"""The tenant-scoped admin: staff see only their tenants' objects; API key creation shows the key once."""

from __future__ import annotations

import re
import uuid

import pytest
from django.test import Client

from tenants.models import ApiKey, AuditEvent, Role, Tenant
from tenants.secrets import hash_token
from tenants.services import create_api_key, rotate_webhook_secret
from tests.support.api import bearer_client

PASSWORD = "pw-for-tests-1"


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def two_tenants_with_keys(tenant, other_tenant):
    create_api_key(tenant, name="acme-deploy-key")
    create_api_key(other_tenant, name="globex-secret-key")
    rotate_webhook_secret(tenant)
    rotate_webhook_secret(other_tenant)
    return tenant, other_tenant


def test_staff_owner_sees_only_their_tenants_keys_and_audit_events(two_tenants_with_keys, make_staff_user):
    tenant, _ = two_tenants_with_keys
    client = logged_in(make_staff_user("olga", tenant, Role.OWNER))
    keys = client.get("/admin/tenants/apikey/").content.decode()
    events = client.get("/admin/tenants/auditevent/").content.decode()
    tenants = client.get("/admin/tenants/tenant/").content.decode()
    assert "acme-deploy-key" in keys and "globex-secret-key" not in keys
    assert "Acme" in events and "Globex" not in events
    assert "Acme" in tenants and "Globex" not in tenants


def test_another_tenants_object_is_treated_as_missing(two_tenants_with_keys, make_staff_user):
    tenant, other = two_tenants_with_keys
    theirs = ApiKey.objects.get(tenant=other)
    their_event = AuditEvent.objects.filter(tenant=other).first()
    their_membership = make_staff_user("gus", other, Role.OWNER).memberships.get()
    client = logged_in(make_staff_user("olga", tenant, Role.OWNER))
    for url in (
        f"/admin/tenants/apikey/{theirs.pk}/change/",
        f"/admin/tenants/apikey/{uuid.uuid4()}/change/",
        f"/admin/tenants/tenant/{other.pk}/change/",
        f"/admin/tenants/auditevent/{their_event.pk}/change/",
        f"/admin/tenants/membership/{their_membership.pk}/change/",
        f"/admin/tenants/membership/{their_membership.pk}/delete/",
    ):
        response = client.get(url)
        assert (response.status_code, response["Location"]) == (302, "/admin/"), url


def test_owner_of_one_tenant_and_viewer_of_another_sees_only_the_owned_tenants_keys(
    two_tenants_with_keys, make_staff_user
):
    tenant, other = two_tenants_with_keys
    user = make_staff_user("split", tenant, Role.OWNER)
    user.memberships.create(tenant=other, role=Role.VIEWER)
    page = logged_in(user).get("/admin/tenants/apikey/").content.decode()
    assert "acme-deploy-key" in page and "globex-secret-key" not in page


def test_tenant_filter_lists_only_the_users_tenants(tenant, other_tenant, make_tenant, make_staff_user):
    third = make_tenant("Umbrella")
    create_api_key(tenant, name="a")
    create_api_key(other_tenant, name="b")
    create_api_key(third, name="c")
    user = make_staff_user("two", tenant, Role.OWNER)
    user.memberships.create(tenant=other_tenant, role=Role.OWNER)
    page = logged_in(user).get("/admin/tenants/apikey/").content.decode()
    assert "By tenant" in page and "Globex" in page and "Umbrella" not in page


def test_viewer_cannot_see_or_create_keys(tenant, make_staff_user):
    client = logged_in(make_staff_user("vera", tenant, Role.VIEWER))
    assert client.get("/admin/tenants/apikey/").status_code == 403
    response = client.post("/admin/tenants/apikey/add/", {"name": "sneaky", "role": "owner"})
    assert response.status_code == 403
    assert not ApiKey.objects.filter(name="sneaky").exists()


def created_key(response) -> str:
    assert response.status_code == 200, response.content[:500]
    match = re.search(r'<code id="raw-api-key"[^>]*>(swb_[A-Za-z0-9_-]{43})</code>', response.content.decode())
    assert match, response.content.decode()
    return match.group(1)


def test_single_tenant_staff_owner_creates_a_key_and_sees_it_once(tenant, make_staff_user):
    # given a staff owner of one tenant (the tenant field is not even shown)
    user = make_staff_user("olga", tenant, Role.OWNER)
    client = logged_in(user)
    form = client.get("/admin/tenants/apikey/add/").content.decode()
    assert 'name="tenant"' not in form
    # when they create a key
    raw = created_key(client.post("/admin/tenants/apikey/add/", {"name": "from admin", "role": "admin"}))
    # then the key exists in their tenant, hashed, audited with the user and IP, and works
    key = ApiKey.objects.get(name="from admin")
    assert (key.tenant, key.role, key.created_by, key.key_hash) == (tenant, "admin", user, hash_token(raw))
    event = AuditEvent.objects.get(object_id=str(key.pk))
    assert (event.action, event.actor, event.actor_user, event.ip_address) == (
        "created",
        "user olga",
        user,
        "127.0.0.1",
    )
    assert bearer_client(raw).post("/api/v1/tenant/webhook-secret").status_code == 200
    # and it is never shown again
    for url in ("/admin/tenants/apikey/", f"/admin/tenants/apikey/{key.pk}/change/"):
        assert raw not in client.get(url).content.decode()


def test_superuser_chooses_the_tenant_of_a_new_key(tenant, other_tenant, django_user_model):
    root = django_user_model.objects.create_superuser("root", password=PASSWORD)
    client = logged_in(root)
    form = client.get("/admin/tenants/apikey/add/").content.decode()
    assert 'name="tenant"' in form
    raw = created_key(
        client.post(
            "/admin/tenants/apikey/add/", {"tenant": str(other_tenant.pk), "name": "root-made", "role": "owner"}
        )
    )
    assert ApiKey.objects.get(key_hash=hash_token(raw)).tenant == other_tenant


def test_invalid_add_form_shows_errors_and_creates_nothing(tenant, make_staff_user):
    client = logged_in(make_staff_user("olga", tenant, Role.OWNER))
    response = client.post("/admin/tenants/apikey/add/", {"name": "", "role": "owner"})
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert ApiKey.objects.count() == 0


def test_revoke_action_revokes_and_audits(tenant, make_staff_user):
    key, _ = create_api_key(tenant, name="doomed", role=Role.OWNER)
    client = logged_in(make_staff_user("olga", tenant, Role.OWNER))
    response = client.post("/admin/tenants/apikey/", {"action": "revoke_keys", "_selected_action": [str(key.pk)]})
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert AuditEvent.objects.filter(object_id=str(key.pk), action="revoked", actor="user olga").count() == 1


def test_admin_changes_are_audited(tenant, make_staff_user):
    key, _ = create_api_key(tenant, name="old name", role=Role.MEMBER)
    client = logged_in(make_staff_user("olga", tenant, Role.OWNER))
    response = client.post(f"/admin/tenants/apikey/{key.pk}/change/", {"name": "new name", "role": "viewer"})
    assert response.status_code == 302
    key.refresh_from_db()
    assert (key.name, key.role) == ("new name", "viewer")
    event = AuditEvent.objects.get(action="changed")
    assert (event.object_repr, event.actor) == (str(key), "user olga")


def test_membership_user_choices_are_limited_to_the_owners_people(tenant, other_tenant, make_staff_user):
    owner = make_staff_user("olga", tenant, Role.OWNER)
    make_staff_user("colleague", tenant, Role.VIEWER)
    make_staff_user("stranger", other_tenant, Role.VIEWER)
    page = logged_in(owner).get("/admin/tenants/membership/add/").content.decode()
    assert "colleague" in page and "stranger" not in page


def test_superuser_sees_everything_and_can_delete_a_tenant_with_its_history(two_tenants_with_keys, django_user_model):
    _, other = two_tenants_with_keys
    client = logged_in(django_user_model.objects.create_superuser("root", password=PASSWORD))
    keys = client.get("/admin/tenants/apikey/").content.decode()
    assert "acme-deploy-key" in keys and "globex-secret-key" in keys
    response = client.post(f"/admin/tenants/tenant/{other.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert list(Tenant.objects.values_list("name", flat=True)) == ["Acme"]
    assert not AuditEvent.objects.filter(tenant_id=other.pk).exists()


def test_staff_without_membership_sees_no_tenant_data(two_tenants_with_keys, make_staff_user):
    client = logged_in(make_staff_user("nobody"))
    index = client.get("/admin/").content.decode()
    assert "API keys" not in index
    assert client.get("/admin/tenants/apikey/").status_code == 403
    assert "Acme" not in client.get("/admin/tenants/tenant/").content.decode()


def test_home_leads_to_the_admin_which_has_no_dead_view_site_link(tenant, make_staff_user):
    # "/" had no page, and the admin's "View site" link pointed there (a 404 for every new user)
    client = logged_in(make_staff_user("olga", tenant, Role.OWNER))
    home = client.get("/")
    assert home.status_code == 302 and home["Location"] == "/admin/"
    index = client.get("/admin/")
    assert index.status_code == 200 and "View site" not in index.content.decode()


def test_owner_sets_the_ai_providers_api_key_write_only(tenant, make_staff_user):
    # the tenant page had the AI provider's URL and model but no field for its API key
    client = logged_in(make_staff_user("olga", tenant, Role.OWNER))
    url = f"/admin/tenants/tenant/{tenant.pk}/change/"
    form = {"name": tenant.name, "slug": tenant.slug, "llm_base_url": "http://127.0.0.1:9/v1", "llm_model": "m"}

    assert client.post(url, {**form, "llm_api_key": "sk-tenant-secret-1234"}).status_code == 302
    tenant.refresh_from_db()
    assert tenant.llm_api_key == "sk-tenant-secret-1234" and tenant.llm_base_url == "http://127.0.0.1:9/v1"
    page = client.get(url).content.decode()
    assert "sk-tenant-secret-1234" not in page and "••••1234" in page and "AI provider API key" in page

    assert client.post(url, {**form, "llm_api_key": ""}).status_code == 302  # blank keeps it
    tenant.refresh_from_db()
    assert tenant.llm_api_key == "sk-tenant-secret-1234"


def test_admin_refuses_a_key_that_would_be_born_expired_like_the_api(tenant, make_staff_user):
    # the admin created a key expiring in 2020, which the API refuses ("Must be in the future.")
    client = logged_in(make_staff_user("olga", tenant, Role.OWNER))
    past = {"name": "past", "role": "viewer", "expires_at_0": "2020-01-01", "expires_at_1": "00:00:00"}
    page = client.post("/admin/tenants/apikey/add/", past)
    assert page.status_code == 200 and "Must be in the future." in page.content.decode()
    assert not ApiKey.objects.filter(name="past").exists()
    future = {**past, "name": "future", "expires_at_0": "2999-01-01"}
    assert "swb_" in client.post("/admin/tenants/apikey/add/", future).content.decode()
