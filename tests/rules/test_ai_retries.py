"""The AI provider waits with the executor's backoff formula: a provider's Retry-After is honoured."""

from __future__ import annotations

from rules import ai


def test_a_busy_provider_is_asked_again_after_its_retry_after(llm, settings, tenant):
    settings.LLM_MAX_RETRIES = 1
    answered = []

    def busy_once(request):
        answered.append(request)
        if len(answered) == 1:
            return 429, {"Retry-After": "0.3"}, {"error": {"message": "slow down"}}
        return llm._answer(request)

    llm.server.route("POST", llm.path, busy_once)

    text = ai.provider_for(tenant).tool_call([{"role": "user", "content": "hi"}], []).content

    assert text == llm.reply_text
    first, second = llm.server.requests
    assert second.at - first.at >= 0.29  # the old fixed 0.2 s pause ignored the provider's answer
