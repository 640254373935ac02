"""integrations.http against real local servers: responses, pooling, redirects, limits, timeouts, TLS.

Private networks are allowed in the suite (config/test_settings.py), so these reach 127.0.0.1.
"""

from __future__ import annotations

import gzip
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from integrations import http
from tests.support.http_servers import blackhole_port

# pytest resets warning filters per test; integrations.http silences this one in production.
pytestmark = [
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
    pytest.mark.usefixtures("fresh_http_pools"),
]


def test_it_sends_and_returns_the_whole_response(http_server):
    response = http.send("POST", http_server.url("/echo?a=1"), json={"name": "Ada"}, params={"b": "2"})

    assert response.status_code == 200
    assert response.json()["method"] == "POST"
    assert response.json()["query"] == {"a": "1", "b": "2"}
    assert response.json()["body"] == '{"name": "Ada"}'
    assert response.headers["content-type"] == "application/json"
    assert response.url == http_server.url("/echo?a=1&b=2")
    assert response.redirects == []
    assert response.elapsed_ms > 0
    assert http_server.count("/echo") == 1


def test_non_2xx_answers_are_returned_not_raised(http_server):
    response = http.send("GET", http_server.url("/status/503"))

    assert response.status_code == 503
    assert response.text == "status 503"


def test_text_uses_the_declared_charset(http_server):
    http_server.route(
        "GET", "/latin", lambda r: (200, {"Content-Type": "text/plain; charset=iso-8859-1"}, "é".encode("latin-1"))
    )

    assert http.send("GET", http_server.url("/latin")).text == "é"


def test_form_and_multipart_bodies_are_sent(http_server):
    form = http.send("POST", http_server.url("/echo"), data={"a": "1 2"}).json()
    multipart = http.send("POST", http_server.url("/echo"), files={"f": ("a.txt", b"hello")}).json()

    assert form["body"] == "a=1+2"
    assert form["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert "hello" in multipart["body"]
    assert multipart["headers"]["Content-Type"].startswith("multipart/form-data; boundary=")


def test_head_returns_no_body(http_server):
    response = http.send("HEAD", http_server.url("/echo"))

    assert response.status_code == 200
    assert response.content == b""


# --- User-Agent, cookies, pools ------------------------------------------------------------------


def test_a_fixed_user_agent_is_sent_unless_the_caller_sets_one(http_server, settings):
    default = http.send("GET", http_server.url("/echo")).json()["headers"]["User-Agent"]
    custom = http.send("GET", http_server.url("/echo"), headers={"user-agent": "Custom/1"}).json()["headers"]

    assert default == settings.OUTBOUND_USER_AGENT
    assert custom["user-agent"] == "Custom/1"
    assert "User-Agent" not in custom


def test_cookies_set_by_a_response_are_not_sent_on_later_calls(http_server):
    http_server.route("GET", "/login", lambda r: (200, {"Set-Cookie": "session=abc; Path=/"}, "ok"))

    http.send("GET", http_server.url("/login"), pool_key="c1")
    echoed = http.send("GET", http_server.url("/echo"), pool_key="c1").json()

    assert "Cookie" not in echoed["headers"]


def test_calls_with_the_same_pool_key_reuse_one_connection(http_server):
    for _ in range(5):
        http.send("GET", http_server.url("/echo"), pool_key="connection-1")

    assert len(http_server.client_ports()) == 5
    assert len(set(http_server.client_ports())) == 1


def test_different_pool_keys_use_different_connections(http_server):
    http.send("GET", http_server.url("/echo"), pool_key="connection-1")
    http.send("GET", http_server.url("/echo"), pool_key="connection-2")
    http.send("GET", http_server.url("/echo"), pool_key="connection-1")

    ports = http_server.client_ports()
    assert ports[0] != ports[1]
    assert ports[0] == ports[2]


def test_the_number_of_pools_is_bounded(http_server, monkeypatch):
    monkeypatch.setattr(http, "POOL_LIMIT", 2)

    for key in ("a", "b", "c"):
        http.send("GET", http_server.url("/echo"), pool_key=key)

    assert list(http._sessions) == ["b", "c"]


def test_concurrent_calls_share_pools_safely(http_server):
    def call(i: int) -> int:
        return http.send("GET", http_server.url(f"/echo?i={i}"), pool_key=f"pool-{i % 3}").json()["query"]["i"]

    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(call, range(60)))

    assert answers == [str(i) for i in range(60)]
    assert sorted(http._sessions) == ["pool-0", "pool-1", "pool-2"]


def test_it_reaches_an_ipv6_loopback_server_when_private_networks_are_allowed(make_http_server):
    server = make_http_server("::1")

    assert http.send("GET", server.url("/echo")).json()["path"] == "/echo"


def test_a_connection_is_reused_after_a_followed_redirect(http_server):
    http.send("GET", http_server.url("/redirect?to=/echo"), follow_redirects=True, pool_key="p")

    assert len(set(http_server.client_ports())) == 1


# --- redirects -----------------------------------------------------------------------------------


def test_redirects_are_not_followed_by_default(http_server):
    response = http.send("GET", http_server.url("/redirect?to=/echo"))

    assert response.status_code == 302
    assert response.headers["location"] == "/echo"
    assert http_server.count("/echo") == 0


def test_redirects_are_followed_when_asked_and_recorded(http_server):
    http_server.route(
        "GET",
        "/hop/*",
        lambda r: (307, {"Location": f"/hop/{int(r.path[5:]) - 1}"}, "") if r.path != "/hop/0" else (200, {}, "done"),
    )

    response = http.send("GET", http_server.url("/hop/2"), follow_redirects=True, max_redirects=2)

    assert response.text == "done"
    assert response.url == http_server.url("/hop/0")
    assert response.redirects == [
        http.RedirectHop(307, http_server.url("/hop/2")),
        http.RedirectHop(307, http_server.url("/hop/1")),
    ]


def test_too_many_redirects_raise(http_server):
    http_server.route("GET", "/loop", lambda r: (302, {"Location": "/loop"}, ""))

    with pytest.raises(http.TooManyRedirects):
        http.send("GET", http_server.url("/loop"), follow_redirects=True, max_redirects=3)

    assert http_server.count("/loop") == 4


def test_303_turns_into_a_get_without_the_body(http_server):
    response = http.send("POST", http_server.url("/redirect?to=/echo&code=303"), json={"a": 1}, follow_redirects=True)

    assert response.json()["method"] == "GET"
    assert response.json()["body"] == ""
    assert "Content-Type" not in response.json()["headers"]


def test_307_keeps_the_method_and_body(http_server):
    response = http.send("POST", http_server.url("/redirect?to=/echo&code=307"), json={"a": 1}, follow_redirects=True)

    assert response.json()["method"] == "POST"
    assert response.json()["body"] == '{"a": 1}'


def test_authorization_is_kept_on_the_same_host_and_dropped_across_hosts(http_server, make_http_server):
    other = make_http_server()
    auth = {"Authorization": "Bearer secret-token"}
    cross = f"http://localhost:{other.port}/echo"

    same = http.send("GET", http_server.url("/redirect?to=/echo"), headers=auth, follow_redirects=True).json()
    moved = http.send("GET", http_server.url(f"/redirect?to={cross}"), headers=auth, follow_redirects=True).json()

    assert same["headers"]["Authorization"] == "Bearer secret-token"
    assert "Authorization" not in moved["headers"]
    assert moved["headers"]["Host"] == f"localhost:{other.port}"


# --- timeouts and the deadline -------------------------------------------------------------------


def test_a_connect_timeout_raises_request_timeout_promptly():
    with blackhole_port() as port:
        started = time.monotonic()
        with pytest.raises(http.RequestTimeout) as caught:
            http.send("GET", f"http://127.0.0.1:{port}/", connect_timeout=0.3)

    assert time.monotonic() - started < 3
    assert str(caught.value) == "connecting to 127.0.0.1 timed out"


def test_a_read_timeout_raises_request_timeout_promptly(http_server):
    started = time.monotonic()
    with pytest.raises(http.RequestTimeout):
        http.send("GET", http_server.url("/slow?ms=2000"), read_timeout=0.3)

    assert time.monotonic() - started < 1.8


def test_the_deadline_bounds_waiting_for_headers(http_server):
    started = time.monotonic()
    with pytest.raises(http.RequestTimeout):
        http.send("GET", http_server.url("/slow?ms=2500"), read_timeout=5, deadline=0.5)

    assert time.monotonic() - started < 2


def test_the_deadline_bounds_a_body_that_trickles_in(http_server):
    """Each piece arrives well within the read timeout; only the total deadline can stop it."""
    started = time.monotonic()
    with pytest.raises(http.RequestTimeout):
        http.send("GET", http_server.url("/drip?ms=150&chunks=40"), read_timeout=5, deadline=0.5)

    assert time.monotonic() - started < 3


def test_the_deadline_cuts_a_single_long_wait_inside_the_body(http_server):
    """Headers arrive at once, the first piece of body only after 3 s: the read itself is cut."""
    started = time.monotonic()
    with pytest.raises(http.RequestTimeout):
        http.send("GET", http_server.url("/drip?ms=3000&chunks=2"), read_timeout=10, deadline=0.5)

    assert time.monotonic() - started < 2


def test_the_deadline_covers_redirect_hops(http_server):
    http_server.route("GET", "/slow-hop", lambda r: (time.sleep(0.3), (302, {"Location": "/slow-hop"}, ""))[1])

    with pytest.raises(http.RequestTimeout):
        http.send("GET", http_server.url("/slow-hop"), follow_redirects=True, max_redirects=50, deadline=0.8)


def test_a_request_without_a_timeout_is_impossible(http_server):
    with pytest.raises(ValueError):
        http.send("GET", http_server.url("/echo"), read_timeout=None)
    with pytest.raises(ValueError):
        http.send("GET", http_server.url("/echo"), connect_timeout=0)


# --- response size ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["length", "chunked", "close"])
def test_a_response_over_max_bytes_raises(http_server, mode):
    with pytest.raises(http.ResponseTooLarge) as caught:
        http.send("GET", http_server.url(f"/huge?bytes={6 * 1024 * 1024}&mode={mode}"))

    assert str(caught.value) == "response larger than 5242880 bytes"


@pytest.mark.parametrize("mode", ["length", "chunked", "close"])
def test_max_bytes_is_exact(http_server, mode):
    assert len(http.send("GET", http_server.url(f"/huge?bytes=1000&mode={mode}"), max_bytes=1000).content) == 1000
    with pytest.raises(http.ResponseTooLarge):
        http.send("GET", http_server.url(f"/huge?bytes=1001&mode={mode}"), max_bytes=1000)


def test_a_compressed_body_is_limited_by_its_decoded_size(http_server):
    bomb = gzip.compress(b"\0" * (20 * 1024 * 1024))
    http_server.route("GET", "/bomb", lambda r: (200, {"Content-Encoding": "gzip"}, bomb))

    with pytest.raises(http.ResponseTooLarge):
        http.send("GET", http_server.url("/bomb"), max_bytes=1024 * 1024)
    assert len(bomb) < 1024 * 1024


def test_a_small_content_length_does_not_buy_a_bigger_body(http_server):
    """The server announces 10 bytes and sends more: only the announced bytes are read."""
    response = http.send("GET", http_server.url("/huge?bytes=100000&mode=lie"), max_bytes=1000)

    assert response.content == b"x" * 10


# --- connection errors and TLS -------------------------------------------------------------------


def test_a_refused_connection_raises_connection_failed():
    with blackhole_port() as port:
        pass  # the port is closed again: nothing listens there now

    with pytest.raises(http.ConnectionFailed) as caught:
        http.send("GET", f"http://127.0.0.1:{port}/")

    assert str(caught.value) == f"could not connect to 127.0.0.1:{port}: connection refused"
    assert caught.value.refused is False


def test_tls_is_verified_by_default(make_http_server):
    server = make_http_server(tls=True)

    with pytest.raises(http.TLSFailure):
        http.send("GET", server.url("/echo"))
    assert http.send("GET", server.url("/echo"), verify_tls=False).status_code == 200
    assert http.send("GET", f"https://localhost:{server.port}/echo", verify_tls=False).status_code == 200


def test_error_messages_never_contain_secrets(make_http_server):
    server = make_http_server(tls=True)
    secret_url = server.url("/echo?api_key=QUERY-SECRET")
    headers = {"Authorization": "Bearer HEADER-SECRET", "X-Api-Key": "HEADER-SECRET"}

    errors = []
    for call in (
        lambda: http.send("GET", secret_url, headers=headers),
        lambda: http.send("GET", "http://user:URL-SECRET@127.0.0.1:1/"),
        lambda: http.send("GET", "http://127.0.0.1:1/?token=QUERY-SECRET", headers=headers),
        lambda: http.send(
            "GET", server.url("/huge?bytes=100&api_key=QUERY-SECRET"), headers=headers, max_bytes=10, verify_tls=False
        ),
    ):
        with pytest.raises(http.OutboundError) as caught:
            call()
        errors.append(caught.value)

    for error in errors:
        shown = f"{error} {error!r} {error.__cause__!r} {error.__context__ if not error.__suppress_context__ else ''}"
        assert "SECRET" not in shown


# --- Retry-After ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("1.5", 1.5),
        ("-1", None),
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
        ("inf", None),
        ("Sat, 21 Nov 2026 10:00:30 GMT", 30.0),
        ("Sat, 21 Nov 2026 09:59:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(value, seconds):
    now = datetime(2026, 11, 21, 10, 0, 0, tzinfo=UTC)

    assert http.parse_retry_after(value, now=now) == seconds


def test_retry_after_round_trip_with_the_test_server(http_server):
    url = http_server.url("/retry-after?seconds=7&times=2")

    answers = [http.send("GET", url) for _ in range(3)]

    assert [a.status_code for a in answers] == [429, 429, 200]
    assert http.parse_retry_after(answers[0].headers["Retry-After"]) == 7.0
    assert http_server.count("/retry-after") == 3
