from __future__ import annotations

from django.apps import AppConfig


class CallsConfig(AppConfig):
    name = "calls"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # rules may not import calls: the agent runtime answers conversations through rules' hook.
        from calls.runtime.hook import RuntimeHook
        from rules import agents

        agents.register(RuntimeHook())

        from calls import metrics

        metrics.register()
