from __future__ import annotations

from django.apps import AppConfig


class RulesConfig(AppConfig):
    name = "rules"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from rules import ruleset
        from rules.models import Rule

        post_save.connect(ruleset.rule_saved_or_deleted, sender=Rule, dispatch_uid="ruleset-version-save")
        post_delete.connect(ruleset.rule_saved_or_deleted, sender=Rule, dispatch_uid="ruleset-version-delete")
