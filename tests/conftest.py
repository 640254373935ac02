"""Fixtures shared by the whole suite: tenants, users and API clients per role, a real Celery worker."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from tenants.auth import forget_api_key
from tenants.models import Membership, Role, Tenant
from tenants.services import create_api_key, unique_slug
from tests.support.api import bearer_client

pytest_plugins = [
    "tests.support.worker",
    "tests.support.browser",
    "tests.support.http_servers",
    "tests.support.customer_api",
    "tests.support.oauth_server",
    "tests.support.llm_server",
    "tests.support.livekit_server",
]


@pytest.fixture(autouse=True)
def _forget_remembered_api_keys():
    """Each test starts with no API key remembered by this process (tenants.auth)."""
    forget_api_key()
    yield
    forget_api_key()


@pytest.fixture
def make_tenant(db):
    def make(name: str = "Acme") -> Tenant:
        return Tenant.objects.create(name=name, slug=unique_slug(name))

    return make


@pytest.fixture
def tenant(make_tenant) -> Tenant:
    return make_tenant("Acme")


@pytest.fixture
def other_tenant(make_tenant) -> Tenant:
    return make_tenant("Globex")


@pytest.fixture
def api_client_for(db):
    """`api_client_for(tenant, role)` → an APIClient authenticated with a fresh key of that role."""

    def make(tenant: Tenant, role: str = Role.OWNER) -> APIClient:
        _, raw_key = create_api_key(tenant, name=f"{role} test key", role=role)
        return bearer_client(raw_key)

    return make


@pytest.fixture
def clients(tenant, api_client_for) -> dict[str, APIClient]:
    """One API client per role, all for `tenant`."""
    return {role: api_client_for(tenant, role) for role in Role.values}


@pytest.fixture
def owner_client(clients) -> APIClient:
    return clients[Role.OWNER]


@pytest.fixture
def member(clients) -> APIClient:
    return clients[Role.MEMBER]


@pytest.fixture
def viewer(clients) -> APIClient:
    return clients[Role.VIEWER]


@pytest.fixture
def other_client(other_tenant, api_client_for) -> APIClient:
    """An owner of another tenant: sees none of `tenant`'s objects."""
    return api_client_for(other_tenant, Role.OWNER)


@pytest.fixture
def make_staff_user(db):
    def make(username: str, tenant: Tenant | None = None, role: str = Role.ADMIN, password: str = "pw-for-tests-1"):
        user = get_user_model().objects.create_user(username=username, password=password, is_staff=True)
        if tenant is not None:
            Membership.objects.create(tenant=tenant, user=user, role=role)
        return user

    return make
