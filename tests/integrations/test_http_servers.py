"""The local test servers themselves (tests/support/http_servers.py), which the whole suite builds on."""

from __future__ import annotations

import base64

import pytest

from integrations import http
from tests.support.http_servers import HttpServer

pytestmark = [pytest.mark.usefixtures("fresh_http_pools")]


def test_echo_reports_the_request(http_server):
    body = b"\x00\xffraw"

    echoed = http.send("PUT", http_server.url("/echo?a=1&a=2&b="), data=body, headers={"X-Test": "yes"}).json()

    assert echoed["method"] == "PUT"
    assert echoed["path"] == "/echo"
    assert echoed["query"] == {"a": "1", "b": ""}
    assert echoed["query_list"] == {"a": ["1", "2"], "b": [""]}
    assert echoed["headers"]["X-Test"] == "yes"
    assert base64.b64decode(echoed["body_base64"]) == body
    assert http_server.last.body == body
    assert http_server.last.header("x-test") == "yes"


def test_custom_routes_win_and_may_be_prefixes(http_server):
    http_server.route("POST", "/token", lambda r: (200, {}, {"access_token": "t", "got": r.json()}))
    http_server.route("*", "/items/*", lambda r: (201, {"X-Item": r.path[7:]}, "made"))

    token = http.send("POST", http_server.url("/token"), json={"grant_type": "client_credentials"})
    item = http.send("DELETE", http_server.url("/items/42"))

    assert token.json() == {"access_token": "t", "got": {"grant_type": "client_credentials"}}
    assert (item.status_code, item.headers["X-Item"], item.text) == (201, "42", "made")


def test_json_route_is_configurable(http_server):
    http_server.set_json({"price": 12.5}, status=202)

    response = http.send("GET", http_server.url("/json"))

    assert (response.status_code, response.json()) == (202, {"price": 12.5})


def test_requests_are_counted_per_path_and_cleared(http_server):
    for path in ("/echo", "/echo", "/status/204"):
        http.send("GET", http_server.url(path))

    assert (http_server.count("/echo"), http_server.count("/status/204"), http_server.count()) == (2, 1, 3)
    http_server.clear()
    assert http_server.requests == []


def test_retry_after_counts_per_key(http_server):
    first = [http.send("GET", http_server.url("/retry-after?times=1&key=a&status=503")).status_code for _ in range(2)]
    other = http.send("GET", http_server.url("/retry-after?times=1&key=b")).status_code

    assert first == [503, 200]
    assert other == 429


def test_an_https_server_can_be_trusted_through_its_certificate(make_http_server):
    server = make_http_server(tls=True)

    assert http.send("GET", server.url("/echo"), verify_tls=server.cert_path).status_code == 200


def test_it_works_as_a_context_manager_and_stops_with_open_keep_alive_connections():
    with HttpServer() as server:
        http.send("GET", server.url("/echo"), pool_key="kept-open")
        url = server.url("/echo")

    with pytest.raises(http.ConnectionFailed):
        http.send("GET", url, pool_key="fresh")
