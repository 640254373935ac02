"""Content negotiation for the API (REST_FRAMEWORK's DEFAULT_CONTENT_NEGOTIATION_CLASS): of the
response's renderer, and of the request body's parser."""

from __future__ import annotations

from rest_framework import negotiation


class UsualAcceptFirst(negotiation.DefaultContentNegotiation):
    """DRF's content negotiation, with the answer to what nearly every client sends (no Accept, `*/*`
    or the first renderer's type, no `?format=`) given without parsing and ranking media types: the
    first renderer and its own media type, exactly what DRF would choose."""

    def select_renderer(self, request, renderers, format_suffix=None):
        accept = request.META.get("HTTP_ACCEPT", "*/*")
        usual = accept == "*/*" or accept == renderers[0].media_type
        if usual and not format_suffix and not self._format_in_query(request):
            return renderers[0], renderers[0].media_type
        return super().select_renderer(request, renderers, format_suffix)

    def select_parser(self, request, parsers):
        """The first parser when the body's Content-Type is exactly its media type (`application/json`,
        what clients send), as DRF's matching would choose; anything else is matched by DRF."""
        if parsers and request.content_type == parsers[0].media_type:
            return parsers[0]
        return super().select_parser(request, parsers)

    def _format_in_query(self, request) -> bool:
        # No query string, no `?format=`: the query is not parsed just to look (a POST rarely has one).
        if not request.META.get("QUERY_STRING"):
            return False
        return self.settings.URL_FORMAT_OVERRIDE in request.query_params
