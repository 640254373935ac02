"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1 for tests.

Use the ``llm`` fixture (registered through ``pytest_plugins`` in tests/conftest.py): it starts a
server, points ``LLM_BASE_URL`` / ``LLM_API_KEY`` / ``LLM_MODEL`` at it and turns the provider's
retries off. Answers, in order of precedence:

- a queued answer, consumed one per request (classification requests excepted, see below)::

      llm.say("Hello Rahul!")                                  # plain assistant text
      llm.call_tool("get_balance", {"account": "42"})           # one OpenAI ``tool_calls`` entry
      llm.call_tools([("a", {}), ("b", {"x": 1})], text="...")  # several, with optional text
      llm.call_tool("get_balance", "{not json")                 # malformed arguments, sent as given
      llm.json({"disposition": "interested", ...})              # JSON content (structured output)
      llm.error(500)                                            # an HTTP error status
      llm.say("slow", delay=2.0)                                # any answer can be delayed
      llm.answer(lambda body: {...})                            # a function of the request body

- classification requests (the rule engine's "Conditions:" prompt) are answered from
  ``true_conditions`` (condition texts that hold) or ``classify_content`` verbatim, never from the
  queue, so a test can script an agent while AI rules are judged;
- otherwise ``reply_text``; ``status`` (when not 200) forces an HTTP error for every request.

Every request is recorded: ``llm.requests()`` (the JSON bodies), ``llm.calls``, ``llm.server``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.http_servers import HttpServer

LLM_KEY = "sk-test-llm-key-do-not-log-1234"


@dataclass
class Answer:
    """One scripted answer: a chat message (content and/or tool calls), an error status, or a function."""

    content: str | None = None
    tool_calls: list[dict] | None = None
    status: int = 200
    delay: float = 0.0
    function: Callable[[dict], dict] | None = None


class ScriptedLLM:
    """See the module docstring."""

    path = "/v1/chat/completions"

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.true_conditions: set[str] = set()
        self.classify_content: str | None = None
        self.reply_text = "This is the AI speaking."
        self.status = 200
        self._queue: list[Answer] = []
        self._lock = threading.Lock()
        self._tool_ids = 0
        server.route("POST", self.path, self._answer)

    @property
    def base_url(self) -> str:
        return self.server.url("/v1")

    @property
    def calls(self) -> int:
        return self.server.count(self.path)

    def requests(self) -> list[dict]:
        return [r.json() for r in self.server.requests if r.path == self.path]

    @property
    def pending(self) -> int:
        """How many queued answers have not been asked for yet."""
        with self._lock:
            return len(self._queue)

    # scripting
    def say(self, text: str, *, delay: float = 0.0) -> ScriptedLLM:
        return self._push(Answer(content=text, delay=delay))

    def call_tool(self, name: str, arguments: dict | str, *, text: str | None = None, delay: float = 0.0):
        return self.call_tools([(name, arguments)], text=text, delay=delay)

    def call_tools(self, calls: Iterable[tuple[str, dict | str]], *, text: str | None = None, delay: float = 0.0):
        entries = []
        for name, arguments in calls:
            self._tool_ids += 1
            encoded = arguments if isinstance(arguments, str) else json.dumps(arguments)
            entries.append(
                {"id": f"call_{self._tool_ids}", "type": "function", "function": {"name": name, "arguments": encoded}}
            )
        return self._push(Answer(content=text, tool_calls=entries, delay=delay))

    def json(self, value: Any, *, delay: float = 0.0) -> ScriptedLLM:
        return self._push(Answer(content=json.dumps(value), delay=delay))

    def error(self, status: int = 500, *, delay: float = 0.0) -> ScriptedLLM:
        return self._push(Answer(status=status, delay=delay))

    def answer(self, function: Callable[[dict], dict], *, delay: float = 0.0) -> ScriptedLLM:
        """Queue an answer computed from the request body: `function(body) -> message dict`."""
        return self._push(Answer(function=function, delay=delay))

    def _push(self, answer: Answer) -> ScriptedLLM:
        with self._lock:
            self._queue.append(answer)
        return self

    # serving
    def _answer(self, request):
        if self.status != 200:
            return self.status, {}, {"error": {"message": "scripted failure"}}
        body = request.json()
        if _is_classification(body):
            return 200, {}, _completion(body, {"role": "assistant", "content": self._classify(body)})
        with self._lock:
            queued = self._queue.pop(0) if self._queue else None
        if queued is None:
            return 200, {}, _completion(body, {"role": "assistant", "content": self.reply_text})
        if queued.delay:
            time.sleep(queued.delay)
        if queued.status != 200:
            return queued.status, {}, {"error": {"message": "scripted failure"}}
        if queued.function is not None:
            return 200, {}, _completion(body, queued.function(body))
        message: dict[str, Any] = {"role": "assistant", "content": queued.content}
        if queued.tool_calls:
            message["tool_calls"] = queued.tool_calls
        return 200, {}, _completion(body, message)

    def _classify(self, body: dict) -> str:
        if self.classify_content is not None:
            return self.classify_content
        user = body["messages"][-1]["content"]
        numbered = re.findall(r"^(\d+)\. (.*)$", user.split("\n\nMessage:")[0], re.M)
        return json.dumps({"matches": [int(n) for n, text in numbered if text in self.true_conditions]})


def _is_classification(body: dict) -> bool:
    messages = body.get("messages") or []
    return (
        len(messages) >= 2
        and messages[0].get("role") == "system"
        and "Conditions:" in str(messages[-1].get("content") or "")
    )


def _completion(body: dict, message: dict) -> dict:
    finish = "tool_calls" if message.get("tool_calls") else "stop"
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": body.get("model"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
    }


@pytest.fixture
def llm(make_http_server, settings) -> ScriptedLLM:
    """A scripted provider on 127.0.0.1, configured as the global AI provider for the test."""
    fake = ScriptedLLM(make_http_server())
    settings.LLM_BASE_URL = fake.base_url
    settings.LLM_API_KEY = LLM_KEY
    settings.LLM_MODEL = "test-model"
    settings.LLM_MAX_RETRIES = 0
    return fake
