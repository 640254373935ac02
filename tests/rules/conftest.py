"""Fixtures for the rules app: endpoints on a real local server, rules, and a fake OpenAI-compatible LLM."""

from __future__ import annotations

import json
import re

import pytest
from django.core.cache import cache

from integrations.models import Connection, Endpoint
from rules import ruleset
from rules.definitions import parse_actions, parse_trigger, replace_actions
from rules.models import Conversation, Rule

LLM_KEY = "sk-test-llm-key-do-not-log-1234"


class FakeLLM:
    """A chat-completions server on 127.0.0.1 with scripted answers.

    Classification requests (recognised by their "Conditions:" block) are answered from `true_conditions`
    (condition texts that hold) — or `classify_content` verbatim when set; other requests get
    `reply_text`. `status` forces an HTTP error. Every request is recorded by the underlying server.
    """

    path = "/v1/chat/completions"

    def __init__(self, server) -> None:
        self.server = server
        self.true_conditions: set[str] = set()
        self.classify_content: str | None = None
        self.reply_text = "This is the AI speaking."
        self.status = 200
        server.route("POST", self.path, self._answer)

    @property
    def base_url(self) -> str:
        return self.server.url("/v1")

    @property
    def calls(self) -> int:
        return self.server.count(self.path)

    def requests(self) -> list[dict]:
        return [r.json() for r in self.server.requests if r.path == self.path]

    def _answer(self, request):
        if self.status != 200:
            return self.status, {}, {"error": {"message": "scripted failure"}}
        body = request.json()
        user = body["messages"][-1]["content"]
        if body["messages"][0]["role"] == "system" and "Conditions:" in user:
            content = self.classify_content
            if content is None:
                numbered = re.findall(r"^(\d+)\. (.*)$", user.split("\n\nMessage:")[0], re.M)
                content = json.dumps({"matches": [int(n) for n, text in numbered if text in self.true_conditions]})
        else:
            content = self.reply_text
        return (
            200,
            {},
            {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "model": body.get("model"),
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                ],
            },
        )


@pytest.fixture(autouse=True)
def _fresh_state(settings):
    settings.LLM_BASE_URL = ""
    settings.LLM_API_KEY = ""
    ruleset.clear_cache()
    yield
    ruleset.clear_cache()


@pytest.fixture
def clean_cache(db):
    """Rate-limit counters live in the shared cache: start each widget test from zero."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def llm(make_http_server, settings) -> FakeLLM:
    fake = FakeLLM(make_http_server())
    settings.LLM_BASE_URL = fake.base_url
    settings.LLM_API_KEY = LLM_KEY
    settings.LLM_MODEL = "test-model"
    settings.LLM_MAX_RETRIES = 0
    return fake


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
