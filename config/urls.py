from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from calls.hook_views import livekit_webhook
from tenants.views import healthz, metrics_view, readyz

api_v1 = [
    path("", include("tenants.urls")),
    path("", include("integrations.urls")),
    path("", include("rules.urls")),
    path("", include("calls.urls")),
    path("", include("campaigns.urls")),
]

# The admin is the product's home page: "/" leads there, and the admin has no "View site" link (it
# pointed at "/", which had no page).
admin.site.site_url = None

# Errors on API paths (unknown route, 500) are JSON: see tenants.middleware.ApiErrorMiddleware.
urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("integration/v1/", include("calls.integration_urls")),
    path("widget/v1/", include("rules.widget_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("healthz", healthz, name="healthz"),
    path("hooks/livekit", livekit_webhook, name="livekit-webhook"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("", RedirectView.as_view(pattern_name="admin:index"), name="home"),
    path("", include("rules.site_urls")),
    path("", include("calls.site_urls")),
]
