"""Fixtures of the standing security tests: endpoints pointed at a real local server."""

from __future__ import annotations

import itertools

import pytest
from django.core.cache import cache

from integrations.models import Connection, Endpoint


@pytest.fixture(autouse=True)
def _clear_cache(db):
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def endpoint_to(tenant, http_server):
    """`endpoint_to(credential=None, connection={...}, **endpoint_fields)` → an endpoint of `tenant` that
    calls `http_server` (`/echo` by default, which answers the request it received)."""
    counter = itertools.count(1)

    def make(credential=None, *, connection: dict | None = None, **fields) -> Endpoint:
        n = next(counter)
        settings = {"base_url": http_server.base_url, "retry": {"max_retries": 0}, **(connection or {})}
        owner = Connection.objects.create(tenant=tenant, name=f"API {n}", credential=credential, **settings)
        fields.setdefault("path", "/echo")
        return Endpoint.objects.create(
            tenant=tenant, connection=owner, name=f"Echo {n}", tool_name=f"echo_{n}", **fields
        )

    return make
