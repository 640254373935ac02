"""The AI provider: one small interface and an OpenAI-compatible chat-completions implementation.

Works with anything that speaks `POST {base}/chat/completions` (OpenAI, Azure OpenAI's v1 surface,
Ollama, vLLM, LM Studio). A tenant's own settings (`Tenant.llm_base_url`, `llm_model`, `llm_api_key`)
override the global `LLM_BASE_URL` / `LLM_MODEL` / `LLM_API_KEY`; with neither there is no provider
and callers degrade (AI rules are skipped, AI replies use the rule's fallback text).

Every request goes through `integrations.http` — a tenant's base URL is a tenant-supplied URL, so it
gets the same SSRF protection as any endpoint. Failures raise `AIError`, whose message never holds
the API key or the response body.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from django.conf import settings

from integrations import http, retries
from integrations.redaction import Redactor

logger = logging.getLogger(__name__)

RETRY_STATUSES = {429, 500, 502, 503, 504}
# The executor's backoff formula (integrations.retries), kept short: a visitor is waiting for the reply.
RETRY_BASE_DELAY = 0.4
RETRY_MAX_DELAY = 2.0
HISTORY_MESSAGES = 20
CLASSIFY_SYSTEM_PROMPT = (
    "You decide which conditions are true of a visitor's message to a business. "
    "You get numbered conditions and the message. Answer with JSON only, no prose: "
    '{"matches": [<numbers of the conditions that are true>]}. '
    'Answer {"matches": []} when none is true.'
)
REPLY_SYSTEM_PROMPT = (
    "You are the helpful assistant of {business} talking to a visitor in a chat. Keep replies short and "
    "plain text. Follow these instructions: {instructions}\n"
    "Facts you may use (JSON): {variables}"
)


class AIError(Exception):
    """The provider could not answer; the message is safe to show and log (no key, no body)."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code  # the provider's HTTP status, when it answered one


@dataclass(frozen=True)
class Condition:
    """One AI trigger to judge: `id` is what `classify` returns when it holds."""

    id: str
    text: str


@dataclass(frozen=True)
class ToolCall:
    """A function call the model asked for; `malformed` when its arguments were not a JSON object."""

    id: str
    name: str
    arguments: dict
    malformed: bool = False


@dataclass
class ToolCallResult:
    content: str | None
    tool_calls: list[ToolCall] = field(default_factory=list)


class AIProvider(Protocol):
    def classify(self, message: str, conditions: Sequence[Condition]) -> list[str]: ...

    def reply(self, conversation: Any, instructions: str, *, variables: dict | None = None) -> str: ...

    def tool_call(self, messages: list[dict], tools: list[dict]) -> ToolCallResult: ...

    def structured(self, messages: list[dict], schema: dict, *, name: str) -> dict: ...


class ChatCompletionsProvider:
    """An OpenAI-compatible chat-completions client."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str = "",
        model: str,
        connect_timeout: float = 3.0,
        read_timeout: float = 20.0,
        max_retries: int = 1,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.model = model
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_retries = max_retries

    def __repr__(self) -> str:
        return f"ChatCompletionsProvider({urlsplit(self.base_url).netloc}, model={self.model})"

    def classify(self, message: str, conditions: Sequence[Condition]) -> list[str]:
        """The ids of the conditions that hold for `message` — all judged in one request."""
        if not conditions:
            return []
        numbered = "\n".join(f"{n}. {c.text}" for n, c in enumerate(conditions, start=1))
        answer = self._complete(
            [
                {"role": "system", "content": CLASSIFY_SYSTEM_PROMPT},
                {"role": "user", "content": f"Conditions:\n{numbered}\n\nMessage:\n{message}"},
            ],
            temperature=0,
        )
        numbers = parse_matches(answer.get("content") or "")
        return [conditions[n - 1].id for n in numbers if 1 <= n <= len(conditions)]

    def reply(self, conversation: Any, instructions: str, *, variables: dict | None = None) -> str:
        """A reply to the conversation so far, following `instructions`, using the session variables."""
        tenant_name = getattr(getattr(conversation, "tenant", None), "name", "the business")
        system = REPLY_SYSTEM_PROMPT.format(
            business=tenant_name,
            instructions=instructions or "answer the visitor's last message",
            variables=json.dumps(variables or {}, default=str)[:8000],
        )
        answer = self._complete([{"role": "system", "content": system}, *history(conversation)])
        text = (answer.get("content") or "").strip()
        if not text:
            raise AIError("the AI returned an empty reply")
        return text

    def tool_call(self, messages: list[dict], tools: list[dict]) -> ToolCallResult:
        """One chat turn with function-calling tools; returns the text and/or the tool calls asked for."""
        answer = self._complete(messages, tools=tools) if tools else self._complete(messages)
        calls = []
        for raw in answer.get("tool_calls") or []:
            function = raw.get("function") or {}
            try:
                arguments = json.loads(function.get("arguments") or "{}")
            except (TypeError, ValueError):
                arguments = None
            malformed = not isinstance(arguments, dict)
            calls.append(
                ToolCall(
                    id=str(raw.get("id", "")),
                    name=str(function.get("name", "")),
                    arguments={} if malformed else arguments,
                    malformed=malformed,
                )
            )
        return ToolCallResult(content=answer.get("content"), tool_calls=calls)

    def structured(self, messages: list[dict], schema: dict, *, name: str) -> dict:
        """A JSON object answering `messages`, shaped by the JSON Schema `schema`.

        Asks for structured output (`response_format` json_schema); a provider that refuses that
        parameter (400) is asked once more for JSON in the reply. The caller validates the object.
        """
        response_format = {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}
        try:
            answer = self._complete(messages, temperature=0, response_format=response_format)
        except AIError as exc:
            if exc.status_code != 400:
                raise
            hint = {"role": "system", "content": "Answer with one JSON object only, matching: " + json.dumps(schema)}
            answer = self._complete([*messages, hint], temperature=0)
        value = first_json_value(answer.get("content") or "")
        if not isinstance(value, dict):
            raise AIError("the AI's answer was not a JSON object")
        return value

    def _complete(self, messages: list[dict], **extra: Any) -> dict:
        payload = {"model": self.model, "messages": messages, **extra}
        headers = {"Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        for attempt in range(1, self.max_retries + 2):
            retryable = attempt <= self.max_retries
            try:
                response = http.send(
                    "POST",
                    f"{self.base_url}/chat/completions",
                    headers=headers,
                    json=payload,
                    connect_timeout=self.connect_timeout,
                    read_timeout=self.read_timeout,
                )
            except http.OutboundError as exc:
                if retryable and not exc.refused:
                    time.sleep(retries.backoff_delay(attempt, base_delay=RETRY_BASE_DELAY, max_delay=RETRY_MAX_DELAY))
                    continue
                self._log_failure(str(exc))
                raise AIError(f"AI provider unreachable: {exc}") from None
            if response.status_code in RETRY_STATUSES and retryable:
                delay = retries.backoff_delay(
                    attempt, base_delay=RETRY_BASE_DELAY, max_delay=RETRY_MAX_DELAY, response=response
                )
                time.sleep(delay)
                continue
            return self._message(response)
        raise AIError("AI provider unavailable")  # pragma: no cover - the loop always returns or raises

    def _message(self, response) -> dict:
        if not 200 <= response.status_code < 300:
            self._log_failure(f"status {response.status_code}")
            raise AIError(f"AI provider answered {response.status_code}", status_code=response.status_code)
        try:
            message = response.json()["choices"][0]["message"]
        except (ValueError, KeyError, IndexError, TypeError):
            self._log_failure("unreadable response")
            raise AIError("AI provider sent an unreadable response") from None
        if not isinstance(message, dict):
            raise AIError("AI provider sent an unreadable response")
        # The provider's key is a secret (SPEC §3): a reply that echoes it (in any spelling) is
        # scrubbed before it reaches a visitor, a tool call or the conversation's history.
        return Redactor(values=[self.api_key]).data(message) if self.api_key else message

    def _log_failure(self, reason: str) -> None:
        logger.warning(
            "AI provider call failed: %s",
            reason,
            extra={"llm_host": urlsplit(self.base_url).netloc, "model": self.model},
        )


def history(conversation: Any) -> list[dict]:
    """The last messages of a saved conversation in chat-completions form (visitor → user)."""
    if conversation is None or conversation._state.adding:
        return []
    roles = {"visitor": "user", "assistant": "assistant"}
    recent = conversation.messages.filter(role__in=roles).order_by("-created_at")[:HISTORY_MESSAGES]
    return [{"role": roles[m.role], "content": m.text} for m in reversed(list(recent))]


def parse_matches(content: str) -> list[int]:
    """The condition numbers in a classification answer, tolerant of what models actually write.

    Accepts `{"matches": [1, 3]}`, a bare `[1, 3]`, numbers as strings, and JSON wrapped in prose or
    a ``` fence. Anything else is an AIError (the caller treats it as "no verdict").
    """
    value = first_json_value(content)
    if isinstance(value, dict):
        value = value.get("matches", value.get("match"))
    if isinstance(value, list):
        return [n for n in (_as_number(item) for item in value) if n is not None]
    raise AIError("the AI's classification could not be read")


def first_json_value(content: str) -> Any:
    """The first JSON object or array in `content` (models wrap JSON in prose or ``` fences), else None."""
    decoder = json.JSONDecoder()
    for start, char in enumerate(content):
        if char not in "[{":
            continue
        try:
            value, _ = decoder.raw_decode(content, start)
        except ValueError:
            continue
        if isinstance(value, (dict, list)):
            return value
    return None


def _as_number(item: Any) -> int | None:
    if isinstance(item, bool):
        return None
    if isinstance(item, int):
        return item
    if isinstance(item, str) and item.strip().isdigit():
        return int(item.strip())
    return None


def provider_for(tenant: Any) -> AIProvider | None:
    """The tenant's provider (its own settings first, else the global default), or None."""
    base_url = getattr(tenant, "llm_base_url", "") or ""
    if base_url:
        api_key = tenant.llm_api_key or ""
        model = tenant.llm_model or settings.LLM_MODEL
    else:
        base_url, api_key, model = settings.LLM_BASE_URL, settings.LLM_API_KEY, settings.LLM_MODEL
    if not base_url:
        return None
    return ChatCompletionsProvider(
        base_url,
        api_key=api_key,
        model=model,
        connect_timeout=settings.LLM_CONNECT_TIMEOUT,
        read_timeout=settings.LLM_READ_TIMEOUT,
        max_retries=settings.LLM_MAX_RETRIES,
    )
