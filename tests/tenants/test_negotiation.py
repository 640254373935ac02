"""tenants.api.UsualAcceptFirst answers exactly as DRF's content negotiation does, faster for the usual
Accept headers."""

from __future__ import annotations

import pytest
from django.http import Http404
from rest_framework import exceptions, parsers, renderers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from tenants.negotiation import UsualAcceptFirst

JSON_ONLY = [renderers.JSONRenderer()]
SEVERAL = [renderers.JSONRenderer(), renderers.BrowsableAPIRenderer(), renderers.StaticHTMLRenderer()]


def _choice(negotiator, query: str, accept: str | None, available, suffix=None):
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    request = Request(APIRequestFactory().get(f"/api/v1/agents{query}", **headers))
    try:
        renderer, media_type = negotiator.select_renderer(request, available, suffix)
    except exceptions.NotAcceptable:
        return "406"
    except Http404:  # ?format= naming no renderer
        return "404"
    return type(renderer).__name__, media_type


@pytest.mark.parametrize("available", [JSON_ONLY, SEVERAL, list(reversed(SEVERAL))])
@pytest.mark.parametrize(
    ("query", "accept", "suffix"),
    [
        ("", None, None),
        ("", "*/*", None),
        ("", "application/json", None),
        ("", "application/json; indent=4", None),
        ("", "text/html", None),
        ("", "text/html, application/json;q=0.5", None),
        ("", "image/png", None),
        ("?format=json", "*/*", None),
        ("?page=2", "*/*", None),
        ("?page=2&format=api", None, None),
        ("?format=api", None, None),
        ("", "*/*", "json"),
    ],
)
def test_the_same_choice_as_drf(query, accept, suffix, available):
    expected = _choice(DefaultContentNegotiation(), query, accept, available, suffix)
    assert _choice(UsualAcceptFirst(), query, accept, available, suffix) == expected


def test_the_api_still_refuses_what_it_cannot_render(owner_client):
    assert owner_client.get("/api/v1/agents", HTTP_ACCEPT="*/*").status_code == 200
    response = owner_client.get("/api/v1/agents", HTTP_ACCEPT="image/png")
    assert response.status_code == 406 and "error" in response.json()


JSON_PARSER = [parsers.JSONParser()]
SEVERAL_PARSERS = [parsers.JSONParser(), parsers.FormParser(), parsers.MultiPartParser()]


@pytest.mark.parametrize("available", [JSON_PARSER, SEVERAL_PARSERS, list(reversed(SEVERAL_PARSERS)), []])
@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/plain",
        "*/*",
        "application/json" + "x" * 300,
    ],
)
def test_the_same_parser_as_drf(content_type, available):
    request = Request(APIRequestFactory().post("/api/v1/agents", b"{}", content_type=content_type))
    expected = DefaultContentNegotiation().select_parser(request, available)
    assert UsualAcceptFirst().select_parser(request, available) is expected
