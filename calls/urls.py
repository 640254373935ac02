from __future__ import annotations

from calls import views
from tenants.routers import Router

router = Router()
router.register("agents", views.AgentViewSet, basename="agent")
router.register("sip-trunks", views.SipTrunkViewSet, basename="sip-trunk")

urlpatterns = [*router.urls]
