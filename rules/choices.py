"""The choices of a rule's fields, apart from the models so that `rules.checks`, which the models
use, can name them without importing the models. `rules.models` re-exports them: import them there."""

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
