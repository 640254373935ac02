from __future__ import annotations

from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path
from django.views.defaults import page_not_found, server_error
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from tenants.api import is_api_path, json_error
from tenants.views import healthz

api_v1 = [
    path("", include("tenants.urls")),
    path("", include("integrations.urls")),
    path("", include("rules.urls")),
    path("", include("calls.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("integration/v1/", include("calls.integration_urls")),
    path("widget/v1/", include("rules.widget_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("healthz", healthz, name="healthz"),
    path("", include("rules.site_urls")),
]


def handler404(request, exception=None) -> JsonResponse:
    if is_api_path(request.path):
        return json_error("Not found.", 404)
    return page_not_found(request, exception)


def handler500(request) -> JsonResponse:
    if is_api_path(request.path):
        return json_error("Internal server error", 500)
    return server_error(request)
