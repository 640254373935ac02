"""Fixtures for the rules app: endpoints on a real local server and rules (the `llm` fixture is in tests/support)."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from integrations.models import Connection, Endpoint
from rules import ruleset
from rules.definitions import parse_actions, parse_trigger, replace_actions
from rules.models import Conversation, Rule
from tests.support.worker import wait_for


@pytest.fixture(autouse=True)
def _fresh_state(settings):
    settings.LLM_BASE_URL = ""
    settings.LLM_API_KEY = ""
    ruleset.clear_cache()
    yield
    ruleset.clear_cache()


@pytest.fixture
def background(settings, monkeypatch):
    """Rule sets built in background threads, as deployed (the suite builds them on messages)."""
    settings.RULES_BUILD_IN_BACKGROUND = True
    monkeypatch.setattr(ruleset, "REFRESH_SECONDS", 0.05)
    yield

    # No build or refresh thread outlives the test's tables. A build still running stores its set
    # after a first clear (and keeps the refresher watching it), so clear until both are gone.
    def settled() -> bool:
        ruleset.clear_cache()
        return not ruleset._building and ruleset._refresher is None

    wait_for(settled, timeout=10)


@pytest.fixture
def clean_cache(db):
    """Rate-limit counters live in the shared cache: start each widget test from zero."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api(make_http_server):
    """A local 'customer API' server: add routes with `api.route(...)`."""
    return make_http_server()


@pytest.fixture
def make_endpoint(db):
    def make(tenant, server, *, path="/orders/{orderId}", mapping=None, parameters=None, tool_name=None, **fields):
        connection = Connection.objects.create(
            tenant=tenant,
            name=f"API {server.port}",
            base_url=server.base_url,
            retry={"max_retries": 0, "base_delay": 0.01, "max_delay": 0.05},
        )
        return Endpoint.objects.create(
            tenant=tenant,
            connection=connection,
            name=tool_name or "Endpoint",
            tool_name=tool_name or f"tool_{Endpoint.objects.count() + 1}",
            method=fields.pop("method", "GET"),
            path=path,
            parameters=parameters or [],
            response_mapping=mapping or {},
            **fields,
        )

    return make


@pytest.fixture
def make_rule(db):
    def make(tenant, name="Rule", *, trigger=None, actions=(), **fields) -> Rule:
        rule = Rule(tenant=tenant, name=name, **fields)
        for key, value in parse_trigger(trigger or {"type": "always"}).items():
            setattr(rule, key, value)
        rule.save()
        replace_actions(rule, parse_actions(list(actions), tenant))
        return rule

    return make


@pytest.fixture
def conversation(tenant) -> Conversation:
    return Conversation.objects.create(tenant=tenant, channel="api", variables={"name": "Ada"})


def reply(text: str) -> dict:
    return {"type": "REPLY_TEXT", "template": text}
