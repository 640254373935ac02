from __future__ import annotations

from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from calls import hooks
        from campaigns import lifecycle

        hooks.on_call_ended(lifecycle.on_call_ended)

        from campaigns import metrics

        metrics.register()
