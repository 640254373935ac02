from __future__ import annotations

from django.urls import path

from tenants import views
from tenants.routers import Router

router = Router()
router.register("api-keys", views.ApiKeyViewSet, basename="api-key")

urlpatterns = [
    path("tenant/webhook-secret", views.WebhookSecretView.as_view(), name="webhook-secret"),
    *router.urls,
]
