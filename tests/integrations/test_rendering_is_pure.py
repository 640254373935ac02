"""Rendering is pure (nothing sent, no credential applied); the executor authenticates."""

from __future__ import annotations

import pytest

from integrations import executor
from integrations.rendering import prepare_request
from tests.support.oauth_server import CLIENT_ID, CLIENT_SECRET


@pytest.fixture
def oauth_endpoint(make_credential, make_connection, make_endpoint, oauth_provider):
    credential = make_credential(
        "oauth2_client_credentials",
        config={"token_url": oauth_provider.token_url, "client_id": CLIENT_ID, "scope": "read"},
        secrets={"client_secret": CLIENT_SECRET},
    )
    connection = make_connection(credential=credential, base_url=oauth_provider.url(""))
    return make_endpoint(connection, path="/api/orders")


def test_rendering_fetches_no_token_and_adds_no_credential(oauth_endpoint, oauth_provider):
    prepared = prepare_request(oauth_endpoint, {})

    assert oauth_provider.http.requests == []
    assert "Authorization" not in prepared.headers
    assert prepared.authenticator is None


def test_the_executor_authenticates_the_rendered_request(oauth_endpoint, oauth_provider):
    prepared = executor.prepare(oauth_endpoint)

    assert oauth_provider.token_count("client_credentials") == 1
    assert prepared.headers["Authorization"].startswith("Bearer ")
    assert prepared.redacted()["headers"]["Authorization"] != prepared.headers["Authorization"]


def test_a_dry_run_authenticates_offline(oauth_endpoint, oauth_provider):
    prepared = executor.prepare(oauth_endpoint, dry_run=True)

    assert oauth_provider.http.requests == []
    assert prepared.redacted()["headers"]["Authorization"] == "••••"  # shown redacted, no token fetched
