from __future__ import annotations

from django.urls import re_path

from calls import tool_views, views
from tenants.routers import Router

router = Router()
router.register("agents", views.AgentViewSet, basename="agent")
router.register("sip-trunks", views.SipTrunkViewSet, basename="sip-trunk")
router.register("do-not-call", views.DoNotCallViewSet, basename="do-not-call")

urlpatterns = [
    *router.urls,
    re_path(r"^tools/(?P<tool_name>[^/]+)/invoke/?$", tool_views.ToolInvokeView.as_view(), name="tool-invoke"),
]
