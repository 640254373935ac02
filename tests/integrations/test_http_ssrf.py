"""SSRF policy of integrations.http: every refusal happens before a packet leaves for the address.

The suite allows private networks (config/test_settings.py); these tests switch that off. A guard
fixture makes any connect() to a non-loopback address fail the test, so "refused before connect"
is proven rather than assumed — and nothing here can reach a real private or public host.
"""

from __future__ import annotations

import ipaddress
import socket

import pytest
import requests

from integrations import http

REAL_GETADDRINFO = socket.getaddrinfo


@pytest.fixture(autouse=True)
def strict(settings, fresh_http_pools):
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = False
    settings.OUTBOUND_ALLOWED_HOSTS = []


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Fail loudly if anything tries to connect anywhere but loopback."""
    real_connect = socket.socket.connect

    def connect(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        if not ipaddress.ip_address(host.split("%")[0]).is_loopback:
            raise AssertionError(f"test tried to connect to {host}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture
def fake_dns(monkeypatch):
    """`fake_dns({"name": ["1.2.3.4", ...]})`; a list of lists answers successive lookups in turn."""

    def install(answers: dict[str, list]):
        calls: dict[str, int] = {}

        def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
            if host not in answers:
                return REAL_GETADDRINFO(host, port, family, type, proto, flags)
            answer = answers[host]
            if answer and isinstance(answer[0], list):
                index = min(calls.get(host, 0), len(answer) - 1)
                calls[host] = calls.get(host, 0) + 1
                answer = answer[index]
            return [
                (
                    socket.AF_INET6 if ":" in ip else socket.AF_INET,
                    socket.SOCK_STREAM,
                    6,
                    "",
                    (ip, port or 0, 0, 0) if ":" in ip else (ip, port or 0),
                )
                for ip in answer
            ]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        return calls

    return install


REFUSED_LOCAL_FORMS = [
    "http://127.0.0.1:{port}/echo",
    "http://2130706433:{port}/echo",
    "http://0177.0.0.1:{port}/echo",
    "http://0x7f.1:{port}/echo",
    "http://0x7f000001:{port}/echo",
    "http://127.1:{port}/echo",
    "http://127.0.0.1.:{port}/echo",
    "http://[::1]:{port}/echo",
    "http://[::ffff:127.0.0.1]:{port}/echo",
    "http://[::ffff:7f00:1]:{port}/echo",
    "http://[::127.0.0.1]:{port}/echo",
    "http://0.0.0.0:{port}/echo",
    "http://0:{port}/echo",
    "http://[::]:{port}/echo",
    "http://localhost:{port}/echo",
    "http://LOCALHOST:{port}/echo",
    "http://api.localhost:{port}/echo",
    "https://127.0.0.1:{port}/echo",
    "http://[::1%25lo]:{port}/echo",
    "http://\u2460\u2461\u2466.0.0.1:{port}/echo",
    "http://127\u30020\u30020\u30021:{port}/echo",
]


@pytest.mark.parametrize("form", REFUSED_LOCAL_FORMS)
def test_it_refuses_loopback_in_any_spelling(http_server, form):
    with pytest.raises(http.DestinationNotAllowed):
        http.send("GET", form.format(port=http_server.port))

    assert http_server.count() == 0


REFUSED_ADDRESSES = [
    ("169.254.169.254", "169.254.169.254 is a link-local address"),
    ("10.0.0.1", "10.0.0.1 is a private address"),
    ("172.16.0.1", "172.16.0.1 is a private address"),
    ("172.31.255.254", "172.31.255.254 is a private address"),
    ("192.168.1.1", "192.168.1.1 is a private address"),
    ("100.64.0.1", "100.64.0.1 is a carrier-grade NAT address"),
    ("100.127.255.254", "100.127.255.254 is a carrier-grade NAT address"),
    ("192.0.0.8", "192.0.0.8 is a reserved address"),
    ("192.0.2.10", "192.0.2.10 is a documentation address"),
    ("198.18.0.1", "198.18.0.1 is a benchmarking address"),
    ("224.0.0.1", "224.0.0.1 is a multicast address"),
    ("255.255.255.255", "255.255.255.255 is a broadcast address"),
    ("240.0.0.1", "240.0.0.1 is a reserved address"),
    ("[fe80::1]", "fe80::1 is a link-local address"),
    ("[fc00::1]", "fc00::1 is a private address"),
    ("[fd00::1]", "fd00::1 is a private address"),
    ("[ff02::1]", "ff02::1 is a multicast address"),
    ("[64:ff9b::7f00:1]", "64:ff9b::7f00:1 is a NAT64 address"),
    ("[64:ff9b:1::a00:1]", "64:ff9b:1::a00:1 is a NAT64 address"),
    ("[2002:7f00:1::1]", "2002:7f00:1::1 is a 6to4 address"),
    (
        "[::ffff:169.254.169.254]",
        "::ffff:169.254.169.254 is the IPv4-mapped form of 169.254.169.254, a link-local address",
    ),
    ("[::ffff:a00:1]", "::ffff:a00:1 is the IPv4-mapped form of 10.0.0.1, a private address"),
    ("[::a9fe:a9fe]", "::a9fe:a9fe is an IPv4-compatible address"),
    ("[2001:db8::1]", "2001:db8::1 is a documentation address"),
    ("[fe80::1%25eth0]", "fe80::1%25eth0 is a link-local address"),
    ("[2001:0:4136:e378:8000:63bf:3fff:fdd2]", "2001:0:4136:e378:8000:63bf:3fff:fdd2 is a reserved address"),
]


@pytest.mark.parametrize(("host", "reason"), REFUSED_ADDRESSES)
def test_it_refuses_non_public_addresses_with_the_reason(host, reason):
    with pytest.raises(http.DestinationNotAllowed) as caught:
        http.send("GET", f"http://{host}/latest/meta-data/")

    assert str(caught.value) == f"destination not allowed: {reason}"


def test_loopback_refusal_names_the_address(http_server):
    with pytest.raises(http.DestinationNotAllowed) as caught:
        http.send("GET", http_server.url("/echo"))

    assert str(caught.value) == "destination not allowed: 127.0.0.1 is a loopback address"
    assert caught.value.refused is True


def test_it_refuses_an_ipv6_loopback_server(make_http_server):
    server = make_http_server("::1")

    with pytest.raises(http.DestinationNotAllowed) as caught:
        http.send("GET", server.url("/echo"))

    assert str(caught.value) == "destination not allowed: ::1 is a loopback address"
    assert server.count() == 0


NOT_PUBLIC = "internal.example resolves to an address that is not public (private, loopback, link-local or reserved)"


@pytest.mark.parametrize(
    "answer",
    [
        ["127.0.0.1"],
        ["169.254.169.254"],
        ["93.184.215.14", "10.1.2.3"],
        ["2606:2800:21f:cb07:6820:80da:af6b:8b2c", "::1"],
        ["::ffff:127.0.0.1"],
    ],
)
def test_it_refuses_a_name_if_any_address_is_blocked(http_server, fake_dns, answer):
    fake_dns({"internal.example": answer})

    with pytest.raises(http.DestinationNotAllowed) as caught:
        http.send("GET", f"http://internal.example:{http_server.port}/echo")

    # The refusal never says what the name resolves to (internal DNS is not the tenant's to map).
    assert str(caught.value) == f"destination not allowed: {NOT_PUBLIC}"
    assert not any(address in str(caught.value) for address in answer)
    assert http_server.count() == 0


@pytest.mark.parametrize("rebound_to", ["127.0.0.1", "::7f00:1", "100.64.0.1"])
def test_a_name_rebinding_between_check_and_connect_is_refused_at_connect(http_server, fake_dns, rebound_to):
    """The pre-check sees a public address; the connect-time resolution gets a blocked one."""
    calls = fake_dns({"rebind.example": [["93.184.215.14"], [rebound_to]]})

    with pytest.raises(http.DestinationNotAllowed) as caught:
        http.send("GET", f"http://rebind.example:{http_server.port}/echo")

    assert calls["rebind.example"] == 2
    assert "rebind.example resolves to" in str(caught.value)
    assert http_server.count() == 0


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.com/x",
        "gopher://example.com:70/_x",
        "dict://example.com:11211/",
        "ws://example.com/",
    ],
)
def test_it_refuses_other_schemes(url):
    with pytest.raises(http.DestinationNotAllowed) as caught:
        http.send("GET", url)

    assert "is not allowed (only http and https)" in str(caught.value)


@pytest.mark.parametrize("url", ["example.com/orders", "//example.com/orders"])
def test_a_url_without_a_scheme_says_so(url):
    with pytest.raises(http.InvalidURL, match=r"URL has no scheme: write it as http://… or https://…"):
        http.check_url(url)


@pytest.mark.parametrize(
    "netloc", ["user:s3cret-pw@127.0.0.1:{port}", "user@127.0.0.1:{port}", ":s3cret-pw@example.com"]
)
def test_it_refuses_credentials_in_the_url_without_repeating_them(http_server, netloc):
    with pytest.raises(http.DestinationNotAllowed) as caught:
        http.send("GET", f"http://{netloc.format(port=http_server.port)}/echo")

    assert str(caught.value) == "destination not allowed: credentials in the URL are not allowed"
    assert "s3cret" not in repr(caught.value)
    assert http_server.count() == 0


@pytest.mark.parametrize(
    "url",
    [
        "http:///echo",
        "http://exa\nmple.com/",
        "http://example.com/\x00",
        "http://exa mple.com/",
        "http://example.com/\x7f",
        "",
    ],
)
def test_it_rejects_malformed_urls(url):
    with pytest.raises(http.InvalidURL):
        http.send("GET", url)


@pytest.mark.parametrize(
    "target", ["http://[::1]:{port}/echo", "http://localhost:{port}/echo", "http://169.254.169.254/"]
)
def test_a_redirect_to_a_blocked_address_is_refused_at_the_hop(http_server, settings, target):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1/32"]
    location = target.format(port=http_server.port)

    with pytest.raises(http.DestinationNotAllowed):
        http.send("GET", http_server.url(f"/redirect?to={location}"), follow_redirects=True)

    assert http_server.count("/redirect") == 1
    assert http_server.count("/echo") == 0


def test_a_redirect_to_another_scheme_is_refused(http_server, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]

    with pytest.raises(http.DestinationNotAllowed):
        http.send("GET", http_server.url("/redirect?to=file:///etc/passwd"), follow_redirects=True)


# --- what the settings allow ---------------------------------------------------------------------


def test_an_allowed_network_lifts_the_check_for_its_addresses_only(http_server, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.0/8"]

    assert http.send("GET", http_server.url("/echo")).status_code == 200
    with pytest.raises(http.DestinationNotAllowed):
        http.send("GET", "http://10.0.0.1/")


def test_an_allowed_network_lets_a_name_resolving_into_it_through_pinned(http_server, settings, fake_dns):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.0/8"]
    fake_dns({"api.internal.example": ["127.0.0.1"]})

    response = http.send("GET", f"http://api.internal.example:{http_server.port}/echo")

    assert response.status_code == 200
    assert response.json()["headers"]["Host"] == f"api.internal.example:{http_server.port}"


def test_an_allowed_network_still_refuses_a_name_with_another_blocked_address(http_server, settings, fake_dns):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.0/8"]
    fake_dns({"api.internal.example": ["127.0.0.1", "169.254.169.254"]})

    with pytest.raises(http.DestinationNotAllowed):
        http.send("GET", f"http://api.internal.example:{http_server.port}/echo")
    assert http_server.count() == 0


def test_an_allowed_host_name_lifts_the_check_for_that_name_only(http_server, settings, fake_dns):
    settings.OUTBOUND_ALLOWED_HOSTS = ["billing.internal.example"]
    fake_dns({"billing.internal.example": ["127.0.0.1"], "other.internal.example": ["127.0.0.1"]})

    assert http.send("GET", f"http://billing.internal.example:{http_server.port}/echo").status_code == 200
    with pytest.raises(http.DestinationNotAllowed):
        http.send("GET", f"http://other.internal.example:{http_server.port}/echo")
    with pytest.raises(http.DestinationNotAllowed):
        http.send("GET", http_server.url("/echo"))
    assert http_server.count() == 1


def test_localhost_is_allowed_only_by_name(http_server, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["localhost"]

    assert http.send("GET", f"http://localhost:{http_server.port}/echo").status_code == 200


def test_allowing_private_networks_lifts_every_address_check(http_server, settings):
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = True

    assert http.send("GET", http_server.url("/echo")).status_code == 200
    assert http.send("GET", f"http://localhost:{http_server.port}/echo").status_code == 200
    with pytest.raises(http.DestinationNotAllowed):
        http.send("GET", "file:///etc/passwd")


# --- check_url (save-time validation) ------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/", "http://[::ffff:10.0.0.1]/x", "gopher://example.com/", "http://u:p@example.com/"]
)
def test_check_url_refuses_what_send_would_refuse(url):
    with pytest.raises(http.DestinationNotAllowed):
        http.check_url(url)


def test_check_url_refuses_a_name_resolving_to_a_private_address(fake_dns):
    fake_dns({"hooks.example": ["192.168.0.10"]})

    with pytest.raises(http.DestinationNotAllowed):
        http.check_url("https://hooks.example/callback")


def test_check_url_accepts_a_public_or_unresolvable_name_and_sends_nothing(fake_dns):
    fake_dns({"hooks.example": ["93.184.215.14"]})

    assert http.check_url("https://hooks.example/callback") is None
    assert http.check_url("https://does-not-resolve.invalid/callback") is None
    assert http.check_url("https://93.184.215.14/callback") is None


def test_check_url_rejects_malformed_urls():
    with pytest.raises(http.InvalidURL):
        http.check_url("https:///no-host")


# --- the connection is pinned to the checked address ---------------------------------------------


@pytest.mark.parametrize(
    ("networks", "answer", "url", "host_header"),
    [
        ([], "93.184.215.14", "https://api.example/v1", "api.example"),
        (["10.0.0.0/8"], "93.184.215.14", "https://api.example/v1", "api.example"),
        (["10.20.0.0/16"], "10.20.0.5", "https://api.example:8443/v1", "api.example:8443"),
    ],
)
def test_the_connection_is_pinned_to_the_checked_address_and_keeps_the_name(
    settings, fake_dns, networks, answer, url, host_header
):
    """What urllib3 will connect to is the IP literal we checked; the name stays for Host and TLS.

    Only the pool key is built: nothing is sent.
    """
    settings.OUTBOUND_ALLOWED_HOSTS = networks
    fake_dns({"api.example": [answer]})
    adapter = http._GuardedAdapter(is_https_proto=True)
    prepared = requests.Request("GET", url).prepare()

    host_params, pool_kwargs = adapter.build_connection_pool_key_attributes(prepared, True)

    assert host_params["host"] == answer
    assert prepared.headers["Host"] == host_header
    assert pool_kwargs["server_hostname"] == "api.example"
    assert pool_kwargs["assert_hostname"] == "api.example"
