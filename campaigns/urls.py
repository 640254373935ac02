from __future__ import annotations

from campaigns import views
from tenants.routers import Router

router = Router()
router.register("campaigns", views.CampaignViewSet, basename="campaign")

urlpatterns = router.urls
