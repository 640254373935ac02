"""integrations.http against a real local server: responses, pooling, redirects, limits, timeouts."""

from __future__ import annotations

import pytest

from integrations import http


def test_it_sends_and_returns_the_whole_response(http_server):
    response = http.send("POST", http_server.url("/echo?a=1"), json={"name": "Ada"})

    assert response.status_code == 200
    assert response.json()["method"] == "POST"
    assert response.json()["query"] == {"a": "1"}
    assert response.json()["body"] == '{"name": "Ada"}'
    assert response.headers["content-type"] == "application/json"
    assert response.url == http_server.url("/echo?a=1")
    assert response.redirects == []
    assert http_server.count("/echo") == 1


def test_it_blocks_loopback_when_private_networks_are_not_allowed(http_server, settings):
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = False

    with pytest.raises(http.DestinationNotAllowed) as caught:
        http.send("GET", http_server.url("/echo"))

    assert str(caught.value) == "destination not allowed: 127.0.0.1 is a loopback address"
    assert http_server.count() == 0
