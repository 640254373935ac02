"""The admin's "Talk to this agent" page: type as the caller, see each utterance, tool call and the analysis.

A thin adapter over calls.runtime: the page keeps the conversation id in the form; each post runs one
runtime call (start, respond or finish) and renders the page again. Member role, tenant-scoped.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.http import Http404
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse

from calls import runtime
from calls.models import Agent, AgentSession
from rules import ai
from rules.models import Channel, Conversation
from tenants import scoping
from tenants.models import Role, role_at_least

NO_PROVIDER_HELP = (
    "This agent needs an AI provider: set LLM_BASE_URL (with LLM_API_KEY and LLM_MODEL) for the deployment, "
    "or the organisation's own AI provider in its tenant settings — any OpenAI-compatible server works "
    "(OpenAI, or a local Ollama or vLLM)."
)


def scoped_agent(request, object_id: str) -> Agent:
    try:
        key = uuid.UUID(str(object_id))
    except ValueError:
        raise Http404("Not found.") from None
    agent = get_object_or_404(scoping.for_user(Agent.objects.all(), request.user), pk=key)
    if not role_at_least(scoping.role_for_user(request.user, agent.tenant), Role.MEMBER):
        raise Http404("Not found.")
    return agent


def _session(agent: Agent, conversation_id: str) -> AgentSession | None:
    try:
        key = uuid.UUID(conversation_id)
    except ValueError:
        return None
    return AgentSession.objects.filter(agent=agent, conversation_id=key).select_related("conversation").first()


def _metadata(text: str) -> dict:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        raise ValueError('Metadata must be a JSON object, e.g. {"customer_name": "Rahul"}.') from None
    if not isinstance(value, dict):
        raise ValueError('Metadata must be a JSON object, e.g. {"customer_name": "Rahul"}.')
    return value


def talk_view(admin_site, request, object_id: str):
    agent = scoped_agent(request, object_id)
    context: dict[str, Any] = {"agent": agent, "turn": None, "error": "", "session": None}
    context["metadata"] = json.dumps((agent.input_schema or {}).get("sample_context") or {}, indent=2)
    status = 200
    if request.method == "POST":
        try:
            context.update(_act(agent, request.POST))
        except (runtime.AgentRuntimeError, ValueError) as exc:
            context["error"], status = str(exc), 400
            context["session"] = _session(agent, request.POST.get("conversation", ""))
        context["metadata"] = request.POST.get("metadata") or context["metadata"]
    if context["turn"] is not None:
        context["tool_calls"] = [_shown_call(call) for call in context["turn"].tool_calls]
    session = context["session"]
    if session is not None:
        # Not "messages": the admin's base template shows Django's message framework under that name.
        context["lines"] = [_line(m) for m in session.conversation.messages.order_by("created_at", "id")]
        context["metadata"] = json.dumps(session.conversation.variables or {}, indent=2, ensure_ascii=False)
        context["analysis_json"] = json.dumps(session.analysis, indent=2) if session.analysis else ""
    context.update(
        admin_site.each_context(request),
        opts=Agent._meta,
        original=agent,
        title=f"Talk to {agent.name}",
        provider_missing=ai.provider_for(agent.tenant) is None,
        no_provider_help=NO_PROVIDER_HELP,
    )
    return TemplateResponse(request, "calls/agent_talk.html", context, status=status)


SPEAKERS = {"visitor": "Caller", "assistant": "Agent", "tool": "Tool"}


def _line(message) -> dict:
    data = message.data if isinstance(message.data, dict) else {}
    arguments = data.get("arguments") if message.role == "tool" else None
    return {
        "role": message.role,
        "speaker": SPEAKERS.get(message.role, message.role),
        "text": message.text,
        "arguments": json.dumps(arguments, ensure_ascii=False) if arguments else "",
        "error": data.get("error") if message.role == "tool" else "",
    }


def _shown_call(call: dict) -> dict:
    result = call.get("result")
    return {**call, "result_json": json.dumps(result, indent=2, ensure_ascii=False) if result is not None else ""}


def _act(agent: Agent, form) -> dict:
    action = form.get("action")
    if action == "start":
        metadata = _metadata(form.get("metadata", ""))
        runtime.provider_or_error(agent.tenant)  # refuse before anything is saved
        conversation = Conversation.objects.create(tenant=agent.tenant, channel=Channel.VOICE, variables=metadata)
        started = runtime.attach(conversation, agent)
        return {"session": started, "turn": runtime.start(conversation)}
    session = _session(agent, form.get("conversation", ""))
    if session is None:
        raise ValueError("Start a conversation first.")
    if action == "say":
        text = (form.get("text") or "").strip()
        if not text:
            raise ValueError("Type what the caller says.")
        turn = runtime.respond(session.conversation, text[:4000])
    elif action == "end":
        runtime.finish(session.conversation)
        turn = None
    else:
        raise ValueError("Unknown action.")
    session.refresh_from_db()
    return {"session": session, "turn": turn}
