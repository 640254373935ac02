"""Content negotiation for the API (REST_FRAMEWORK's DEFAULT_CONTENT_NEGOTIATION_CLASS)."""

from __future__ import annotations

from rest_framework import negotiation


class UsualAcceptFirst(negotiation.DefaultContentNegotiation):
    """DRF's content negotiation, with the answer to what nearly every client sends (no Accept, `*/*`
    or the first renderer's type, no `?format=`) given without parsing and ranking media types: the
    first renderer and its own media type, exactly what DRF would choose."""

    def select_renderer(self, request, renderers, format_suffix=None):
        accept = request.META.get("HTTP_ACCEPT", "*/*")
        usual = accept == "*/*" or accept == renderers[0].media_type
        if usual and not format_suffix and self.settings.URL_FORMAT_OVERRIDE not in request.query_params:
            return renderers[0], renderers[0].media_type
        return super().select_renderer(request, renderers, format_suffix)
