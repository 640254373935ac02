from __future__ import annotations

from django.apps import AppConfig


class RulesConfig(AppConfig):
    name = "rules"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save, pre_delete

        from rules import ruleset, transcript
        from rules.models import Rule, RuleAction

        pre_delete.connect(transcript.lock_rule_before_delete, sender=Rule, dispatch_uid="rule-lock-before-delete")

        for model in (Rule, RuleAction):
            name = model.__name__.lower()
            post_save.connect(ruleset.rule_saved_or_deleted, sender=model, dispatch_uid=f"ruleset-version-save-{name}")
            post_delete.connect(
                ruleset.rule_saved_or_deleted, sender=model, dispatch_uid=f"ruleset-version-delete-{name}"
            )
