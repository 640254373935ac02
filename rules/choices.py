"""The choices of a rule's fields, apart from the models so that the checks below them
(`rules.checks`) can name them. `rules.models` re-exports them: import them from there."""

from __future__ import annotations

from django.db import models

__all__ = ["ActionType", "OnError", "TriggerType"]


class TriggerType(models.TextChoices):
    REGEX = "regex"
    AI = "ai", "AI"
    ALWAYS = "always"


class ActionType(models.TextChoices):
    CALL_API = "CALL_API", "Call an API endpoint"
    SET_VARIABLE = "SET_VARIABLE", "Set a variable"
    REPLY_TEXT = "REPLY_TEXT", "Reply with text"
    REPLY_AI = "REPLY_AI", "Reply with the AI"


class OnError(models.TextChoices):
    CONTINUE = "continue"
    RETRY = "retry"
    FAIL = "fail"
    BRANCH = "branch"
