from __future__ import annotations

from integrations import views
from tenants.routers import Router

router = Router()
router.register("credentials", views.CredentialViewSet, basename="credential")
router.register("connections", views.ConnectionViewSet, basename="connection")
router.register("endpoints", views.EndpointViewSet, basename="endpoint")

urlpatterns = router.urls
