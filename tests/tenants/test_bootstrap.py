"""`manage.py bootstrap_tenant` and the demo tenant of `make run` (SPEC §13)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from tenants.demo import DEMO_KEY_NAME, DEMO_PASSWORD, DEMO_USER
from tenants.models import ApiKey, Membership, Tenant
from tests.support.api import bearer_client


def run(*args) -> list[str]:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().splitlines()


def test_bootstrap_prints_a_working_owner_key_on_its_last_line(db):
    # when a tenant is bootstrapped from the command line
    lines = run("bootstrap_tenant", "Initech")
    # then the last line is a raw owner key that works against the API
    raw = lines[-1]
    assert raw.startswith("swb_") and len(raw) == 47
    tenant = Tenant.objects.get(name="Initech")
    assert lines[:-1] == [f"Tenant Initech created (slug initech, id {tenant.id}).", "Owner API key (shown once):"]
    response = bearer_client(raw).get("/api/v1/api-keys")
    assert response.status_code == 200
    assert [(k["name"], k["role"]) for k in response.json()["results"]] == [("Bootstrap owner key", "owner")]


def test_bootstrap_with_an_admin_user_makes_a_staff_owner_who_can_log_in(db, client):
    # when bootstrapping with a staff user
    lines = run("bootstrap_tenant", "Initech", "--admin-user", "peter", "--password", "tps-report-42")
    # then the user is staff, owns the tenant, and logs into the admin
    user = get_user_model().objects.get(username="peter")
    assert user.is_staff and not user.is_superuser
    assert Membership.objects.get(user=user).role == "owner"
    assert lines[1] == "Staff user peter is its owner."
    assert client.login(username="peter", password="tps-report-42")
    assert client.get("/admin/tenants/apikey/").status_code == 200


def test_bootstrap_twice_with_the_same_name_gets_a_new_slug(db):
    run("bootstrap_tenant", "Initech")
    run("bootstrap_tenant", "Initech")
    assert sorted(Tenant.objects.values_list("slug", flat=True)) == ["initech", "initech-2"]


def test_bootstrap_requires_a_name(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("bootstrap_tenant")


def test_load_demo_is_idempotent_and_replaces_its_key(db, client):
    # when the demo is loaded twice (each `make run`)
    first = run("load_demo", "--base-url", "http://127.0.0.1:8765")
    second = run("load_demo", "--base-url", "http://127.0.0.1:8765")
    # then one tenant, one owner, one active demo key: the latest printed one
    assert Tenant.objects.filter(slug="demo").count() == 1
    assert ApiKey.objects.filter(name=DEMO_KEY_NAME).count() == 2
    active = ApiKey.objects.active().filter(name=DEMO_KEY_NAME)
    assert active.count() == 1
    raw = second[3].split()[2]
    assert second[1] == f"  Admin:     http://127.0.0.1:8765/admin/   login {DEMO_USER} / {DEMO_PASSWORD}"
    assert raw != first[3].split()[2]
    assert second[5].startswith("  Widget:    http://127.0.0.1:8765/widget/demo/")
    assert bearer_client(raw).get("/api/v1/api-keys").status_code == 200
    # and the printed login works
    assert client.login(username=DEMO_USER, password=DEMO_PASSWORD)
