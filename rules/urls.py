from __future__ import annotations

from rules import views
from tenants.routers import Router

router = Router()
router.register("rules", views.RuleViewSet, basename="rule")
router.register("conversations", views.ConversationViewSet, basename="conversation")
router.register("widget-keys", views.WidgetKeyViewSet, basename="widget-key")

urlpatterns = router.urls
