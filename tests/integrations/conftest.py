"""Fixtures for the integrations tests: credentials, connections and endpoints pointed at a real local server."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from integrations.models import Connection, Credential, Endpoint

FAST_RETRY = {"max_retries": 2, "base_delay": 0.01, "max_delay": 0.05}


@pytest.fixture(autouse=True)
def _clear_cache(db):
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def make_credential(tenant):
    def make(type: str = "none", *, config: dict | None = None, secrets: dict | None = None, owner=None, name=None):
        return Credential.objects.create(
            tenant=owner or tenant,
            name=name or f"{type} credential {Credential.objects.count()}",
            type=type,
            config=config or {},
            secrets=secrets or {},
        )

    return make


@pytest.fixture
def make_connection(tenant, http_server):
    def make(*, credential=None, owner=None, retry=None, base_url=None, **fields):
        return Connection.objects.create(
            tenant=owner or tenant,
            name=fields.pop("name", "Local API"),
            base_url=base_url or http_server.base_url,
            credential=credential,
            retry={**FAST_RETRY, **(retry or {})},
            **fields,
        )

    return make


@pytest.fixture
def make_endpoint(make_connection):
    counter = iter(range(1, 10_000))

    def make(connection=None, **fields):
        connection = connection or make_connection()
        fields.setdefault("name", "Echo")
        fields.setdefault("tool_name", f"tool_{next(counter)}")
        fields.setdefault("path", "/echo")
        return Endpoint.objects.create(tenant=connection.tenant, connection=connection, **fields)

    return make
