"""The only outgoing-HTTP client of Switchboard, with SSRF protection (see docs/outbound-http.md).

Everything that leaves the platform — tenant endpoints, OAuth token URLs, challenge steps, webhook
callbacks, the AI provider — goes through `send()`. It is built on requests-hardened, whose adapter
resolves the host at connect time, checks the address and pins the connection to it (so a DNS answer
that changes between check and connect cannot redirect the socket). On top of that this module:

- checks *every* address a name resolves to against an explicit deny list (requests-hardened checks
  only the first, and Python's `is_private`/`is_global` miss ranges such as IPv4-compatible IPv6);
- re-checks the address the connection is actually pinned to against the same deny list;
- follows redirects itself (only when asked), checking every hop before it is requested;
- enforces connect/read timeouts, a total deadline and a response size limit while streaming;
- keeps one pooled keep-alive session per `pool_key`, without cookie persistence or proxy/netrc
  settings from the environment (a proxy would bypass the address pinning).

Error messages never contain URLs, credentials or header values, only host names and reasons.
"""

from __future__ import annotations

import contextlib
import email.utils
import ipaddress
import json as jsonlib
import math
import socket
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.cookiejar import DefaultCookiePolicy
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from requests_hardened import Config, Manager
from requests_hardened.ip_filter import InvalidIPAddress
from requests_hardened.ip_filter_adapter import IPFilterAdapter
from urllib3.exceptions import InsecureRequestWarning, NameResolutionError, ReadTimeoutError

# `verify_tls=False` is an explicit per-call choice (a connection setting); no warning per request.
warnings.filterwarnings("ignore", category=InsecureRequestWarning)

__all__ = [
    "ConnectionFailed",
    "DestinationNotAllowed",
    "HttpResponse",
    "InvalidURL",
    "OutboundError",
    "RedirectHop",
    "RequestTimeout",
    "ResponseTooLarge",
    "TLSFailure",
    "TooManyRedirects",
    "check_resolved",
    "check_url",
    "close_pools",
    "parse_retry_after",
    "send",
]

DEFAULT_MAX_BYTES = 5 * 1024 * 1024
POOL_LIMIT = 256
RESOLVE_CACHE_SECONDS = 5.0
_CHUNK = 64 * 1024
_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
_ALLOWED_SCHEMES = frozenset({"http", "https"})


# --- errors --------------------------------------------------------------------------------------


class OutboundError(Exception):
    """Base of every error `send()` raises; the message is safe to show and store.

    `refused` is true when the platform refused to send (nothing left the machine): SPEC §4 calls
    that a `failure`, every other error an `exception`.
    """

    refused = False


class DestinationNotAllowed(OutboundError):
    refused = True

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(f"destination not allowed: {reason}")


class InvalidURL(OutboundError):
    refused = True


class RequestTimeout(OutboundError):
    pass


class ConnectionFailed(OutboundError):
    pass


class TLSFailure(OutboundError):
    pass


class ResponseTooLarge(OutboundError):
    pass


class TooManyRedirects(OutboundError):
    pass


# --- the address policy --------------------------------------------------------------------------

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _nets(label: str, *cidrs: str) -> list[tuple[_Network, str]]:
    return [(ipaddress.ip_network(cidr), label) for cidr in cidrs]


# Order matters only for the wording of the reason (the first match names it).
DENIED_IPV4: list[tuple[_Network, str]] = [
    *_nets("an unspecified address", "0.0.0.0/8"),
    *_nets("a loopback address", "127.0.0.0/8"),
    *_nets("a private address", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"),
    *_nets("a carrier-grade NAT address", "100.64.0.0/10"),
    *_nets("a link-local address", "169.254.0.0/16"),
    *_nets("a reserved address", "192.0.0.0/24", "192.88.99.0/24"),
    *_nets("a documentation address", "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"),
    *_nets("a benchmarking address", "198.18.0.0/15"),
    *_nets("a multicast address", "224.0.0.0/4"),
    *_nets("a broadcast address", "255.255.255.255/32"),
    *_nets("a reserved address", "240.0.0.0/4"),
]
# IPv4-mapped (::ffff:0:0/96) addresses are judged by the IPv4 address they carry; IPv4-compatible
# (::/96), NAT64 and 6to4 forms are refused whole, whatever they embed.
DENIED_IPV6: list[tuple[_Network, str]] = [
    *_nets("an unspecified address", "::/128"),
    *_nets("a loopback address", "::1/128"),
    *_nets("an IPv4-compatible address", "::/96"),
    *_nets("a NAT64 address", "64:ff9b::/96", "64:ff9b:1::/48"),
    *_nets("a 6to4 address", "2002::/16"),
    *_nets("a reserved address", "100::/64", "2001::/23", "5f00::/16"),
    *_nets("a documentation address", "2001:db8::/32", "3fff::/20"),
    *_nets("a private address", "fc00::/7"),
    *_nets("a link-local address", "fe80::/10"),
    *_nets("a site-local address", "fec0::/10"),
    *_nets("a multicast address", "ff00::/8"),
]


def refused_as(ip: _Address) -> str | None:
    """What makes `ip` off limits (e.g. `a loopback address`), or None when it may be contacted."""
    if ip.version == 6:
        mapped = ip.ipv4_mapped
        if mapped is not None:
            inner = refused_as(mapped)
            return f"the IPv4-mapped form of {mapped}, {inner}" if inner else None
        denied = DENIED_IPV6
    else:
        denied = DENIED_IPV4
    for network, label in denied:
        if ip in network:
            return label
    if not ip.is_global:
        return "not a public address"
    return None


@dataclass(frozen=True)
class _Policy:
    """What the settings allow, parsed once per distinct settings value."""

    key: tuple
    allow_private: bool
    hosts: frozenset[str]
    networks: tuple[_Network, ...]

    def trusts_host(self, host: str) -> bool:
        return self.allow_private or host in self.hosts

    def refused_as(self, ip: _Address) -> str | None:
        if self.networks:
            plain = ip.ipv4_mapped if ip.version == 6 and ip.ipv4_mapped is not None else ip
            if any(plain.version == n.version and plain in n for n in self.networks):
                return None
        return refused_as(ip)


_policy_cache: _Policy | None = None


def _policy() -> _Policy:
    """The current policy; settings are read on every call (tests change them) but parsed once."""
    global _policy_cache
    key = (bool(settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS), tuple(settings.OUTBOUND_ALLOWED_HOSTS or ()))
    cached = _policy_cache
    if cached is not None and cached.key == key:
        return cached
    hosts: set[str] = set()
    networks: list[_Network] = []
    for entry in key[1]:
        entry = entry.strip().lower()
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
        except ValueError:
            hosts.add(entry.rstrip("."))
    _policy_cache = _Policy(key, key[0], frozenset(hosts), tuple(networks))
    return _policy_cache


# --- resolution ----------------------------------------------------------------------------------

_resolve_cache: dict[tuple[str, int], tuple[float, tuple[_Address, ...]]] = {}


def _resolve(host: str, port: int) -> tuple[_Address, ...]:
    """All addresses `host` resolves to (cached a few seconds: the connect-time check stays fresh)."""
    now = time.monotonic()
    hit = _resolve_cache.get((host, port))
    if hit is not None and hit[0] > now:
        return hit[1]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise ConnectionFailed(f"could not resolve host {host}") from None
    addresses = tuple(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))
    if len(_resolve_cache) > 1024:
        _resolve_cache.clear()
    _resolve_cache[(host, port)] = (now + RESOLVE_CACHE_SECONDS, addresses)
    return addresses


def _check_addresses(policy: _Policy, host: str, addresses: tuple[_Address, ...], *, literal: bool) -> None:
    for ip in addresses:
        label = policy.refused_as(ip)
        if label is not None:
            raise DestinationNotAllowed(_reason(host, ip, label, literal=literal))


def _reason(host: str, ip: _Address, label: str, *, literal: bool) -> str:
    """`127.0.0.1 is a loopback address` for an address the tenant wrote; for a name only that it
    resolves to an address that is not public: saying which address (or which kind) would let a
    tenant map the deployment's internal DNS through refusals."""
    if literal:
        return f"{host} is {label}"
    return f"{host} resolves to an address that is not public (private, loopback, link-local or reserved)"


# --- URL checks ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    port: int


def _parse(url: str) -> _Target:
    if not isinstance(url, str) or not url:
        raise InvalidURL("URL is empty")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise InvalidURL("URL contains control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidURL("URL is malformed") from None
    scheme = parts.scheme.lower()
    if not scheme:
        raise InvalidURL("URL has no scheme: write it as http://… or https://…")
    if scheme not in _ALLOWED_SCHEMES:
        shown = f"scheme {scheme}" if scheme.isalnum() and len(scheme) <= 16 else "this scheme"
        raise DestinationNotAllowed(f"{shown} is not allowed (only http and https)")
    if "@" in parts.netloc:
        raise DestinationNotAllowed("credentials in the URL are not allowed")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise InvalidURL("URL has no host")
    if " " in parts.netloc:
        raise InvalidURL("URL host contains spaces")
    return _Target(scheme, host, port or (443 if scheme == "https" else 80))


def _check_target(target: _Target, *, resolve: bool = True) -> None:
    policy = _policy()
    if policy.trusts_host(target.host):
        return
    try:
        literal: _Address | None = ipaddress.ip_address(target.host)
    except ValueError:
        literal = None
    if literal is not None:
        _check_addresses(policy, target.host, (literal,), literal=True)
    elif target.host == "localhost" or target.host.endswith(".localhost"):
        raise DestinationNotAllowed(f"{target.host} is a loopback name")
    elif resolve:
        _check_addresses(policy, target.host, _resolve(target.host, target.port), literal=False)


def check_url(url: str, *, resolve: bool = True) -> None:
    """Validate `url` without sending: http/https only, no credentials, a host, and no address of it
    refused by the SSRF policy. Raises `DestinationNotAllowed` or `InvalidURL`.

    For save-time validation (connection base URLs, callback URLs). A name that does not resolve
    *now* is accepted (DNS may be down at save time); every `send()` checks again anyway.
    """
    target = _parse(url)
    try:
        _check_target(target, resolve=resolve)
    except ConnectionFailed:
        return


def check_resolved(host: str, addresses: list[str]) -> None:
    """Refuse (`DestinationNotAllowed`) unless the policy allows `host` at every one of `addresses`.

    For the one client that cannot go through `send()`: the official LiveKit SDK speaks aiohttp, so its
    session resolves through a resolver that calls this, and connects only to addresses it accepted.
    """
    policy = _policy()
    if policy.trusts_host(host.rstrip(".")):
        return
    if host == "localhost" or host.endswith(".localhost"):
        raise DestinationNotAllowed(f"{host} is a loopback name")
    parsed = tuple(ipaddress.ip_address(address.split("%")[0]) for address in addresses)
    _check_addresses(policy, host, parsed, literal=False)


# --- the connect-time guard ----------------------------------------------------------------------


class _GuardedAdapter(IPFilterAdapter):
    """requests-hardened's adapter plus our deny list on the address the connection is pinned to.

    - Hosts the settings trust (by name, or all with OUTBOUND_ALLOW_PRIVATE_NETWORKS): the plain
      requests adapter, no pinning.
    - No OUTBOUND_ALLOWED_HOSTS networks (production's usual case): requests-hardened resolves,
      checks the first address and pins the connection to it; we then check that very address
      against our deny list too (it misses e.g. IPv4-compatible IPv6).
    - Networks allowed by CIDR: requests-hardened would refuse an allowed private address (and log
      a warning on every call), so we pin ourselves, the same way, to the first address of a
      resolution whose every address passed the policy.
    """

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        policy = _policy()
        host = (urlsplit(request.url).hostname or "").rstrip(".")
        if policy.trusts_host(host):
            return HTTPAdapter.build_connection_pool_key_attributes(self, request, verify, cert)
        if policy.networks:
            return self._pinned_by_us(policy, host, request, verify, cert)
        try:
            host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        except InvalidIPAddress as exc:
            ip = ipaddress.ip_address(str(exc.args[0]))
            label = policy.refused_as(ip) or "not a public address"
            raise DestinationNotAllowed(_reason(host, ip, label, literal=_is_literal(host))) from None
        ip = ipaddress.ip_address(host_params["host"].strip("[]"))
        label = policy.refused_as(ip)
        if label is not None:
            raise DestinationNotAllowed(_reason(host, ip, label, literal=_is_literal(host)))
        return host_params, pool_kwargs

    def _pinned_by_us(self, policy: _Policy, host: str, request, verify, cert):
        host_params, pool_kwargs = HTTPAdapter.build_connection_pool_key_attributes(self, request, verify, cert)
        port = host_params["port"] or (443 if self._is_https_proto else 80)
        try:
            addresses = _resolve(host, port)
        except ConnectionFailed:
            raise requests.ConnectionError("could not resolve host") from None
        _check_addresses(policy, host, addresses, literal=_is_literal(host))
        # What requests-hardened does after its check: keep the name for Host, SNI and the
        # certificate, connect to the address.
        request.headers = CaseInsensitiveDict(request.headers or {})
        bracketed = f"[{host}]" if ":" in host else host
        request.headers["Host"] = f"{bracketed}:{host_params['port']}" if host_params["port"] else bracketed
        if self._is_https_proto:
            pool_kwargs["assert_hostname"] = host
            pool_kwargs["server_hostname"] = host
        first = addresses[0]
        host_params["host"] = f"[{first}]" if first.version == 6 else str(first)
        return host_params, pool_kwargs


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# --- sessions ------------------------------------------------------------------------------------

_sessions: OrderedDict[str, requests.Session] = OrderedDict()
_sessions_lock = threading.Lock()


def _new_session() -> requests.Session:
    manager = Manager(
        Config(
            ip_filter_enable=True,
            ip_filter_allow_loopback_ips=False,
            never_redirect=True,
            default_timeout=(3.0, 5.0),
        )
    )
    session = manager.get_session()
    session.mount("http://", _GuardedAdapter(is_https_proto=False))
    session.mount("https://", _GuardedAdapter(is_https_proto=True))
    # Environment proxies would bypass the pinned address; netrc would add credentials.
    session.trust_env = False
    # Pools are shared by every call with the same key: a cookie one response sets must not ride
    # along on the next call. Callers send Cookie headers explicitly.
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    return session


def _session(pool_key: str | None) -> requests.Session:
    key = "" if pool_key is None else str(pool_key)
    with _sessions_lock:
        session = _sessions.get(key)
        if session is not None:
            _sessions.move_to_end(key)
            return session
        session = _sessions[key] = _new_session()
        if len(_sessions) > POOL_LIMIT:
            _sessions.popitem(last=False)[1].close()
        return session


def close_pools() -> None:
    """Close every pooled session (tests, process shutdown)."""
    with _sessions_lock:
        for session in _sessions.values():
            session.close()
        _sessions.clear()
    _resolve_cache.clear()


# --- responses -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RedirectHop:
    """One redirect that was followed: the answer's status and the URL that answered it."""

    status_code: int
    url: str


@dataclass
class HttpResponse:
    status_code: int
    headers: CaseInsensitiveDict
    content: bytes
    url: str
    elapsed_ms: float
    redirects: list[RedirectHop] = field(default_factory=list)

    @property
    def encoding(self) -> str:
        content_type = self.headers.get("content-type", "")
        for param in content_type.split(";")[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "charset" and value.strip():
                return value.strip().strip("\"'")
        return "utf-8"

    @property
    def text(self) -> str:
        try:
            return self.content.decode(self.encoding, errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300


# --- sending -------------------------------------------------------------------------------------


def send(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    params: Any = None,
    data: Any = None,
    json: Any = None,
    files: Any = None,
    connect_timeout: float = 3.0,
    read_timeout: float = 5.0,
    deadline: float | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    verify_tls: bool | str = True,
    follow_redirects: bool = False,
    max_redirects: int = 5,
    pool_key: str | None = None,
    signer: Callable[[bytes], Mapping[str, str]] | None = None,
) -> HttpResponse:
    """Send one HTTP request under the SSRF policy and return the whole (size-limited) response.

    `deadline` (seconds) bounds this whole call: connecting, every redirect hop and the body
    download. `verify_tls` may also be the path of a CA bundle to trust. `signer` gets the exact body
    bytes of every request sent (each redirect hop too) and returns headers to add (request signing).
    Non-2xx answers are returned, not raised. Raises an `OutboundError` subclass.
    """
    if not all(isinstance(t, int | float) and t > 0 for t in (connect_timeout, read_timeout)):
        raise ValueError("connect_timeout and read_timeout must be positive")
    started = time.monotonic()
    ends = started + deadline if deadline is not None else math.inf
    session = _session(pool_key)
    request_headers = CaseInsensitiveDict(headers or {})
    request_headers.setdefault("User-Agent", settings.OUTBOUND_USER_AGENT)
    method = method.upper()
    hops: list[RedirectHop] = []
    while True:
        target = _parse(url)
        _check_target(target)
        request = requests.Request(
            method, url, headers=request_headers, params=params, data=data, json=json, files=files
        )
        prepared = _prepare(session, request, signer)
        remaining = ends - time.monotonic()
        if remaining <= 0:
            raise RequestTimeout("deadline exceeded")
        timeout = (min(connect_timeout, remaining), min(read_timeout, remaining))
        response = _transmit(session, prepared, target, timeout, verify_tls)
        url = prepared.url or url
        location = response.headers.get("location")
        if not (follow_redirects and response.status_code in _REDIRECT_CODES and location):
            return _complete(response, url, hops, started=started, max_bytes=max_bytes, ends=ends)
        _drain(response, ends)
        hops.append(RedirectHop(response.status_code, url))
        if len(hops) > max_redirects:
            raise TooManyRedirects(f"more than {max_redirects} redirects")
        next_url = urljoin(url, location)
        method, data, json, files = _redirected_method(response.status_code, method, data, json, files)
        _headers_for_redirect(
            request_headers, target, _parse(next_url), body=any(part is not None for part in (data, json, files))
        )
        url, params = next_url, None


def _complete(
    response: requests.Response, url: str, hops: list[RedirectHop], *, started: float, max_bytes: int, ends: float
) -> HttpResponse:
    """The final answer, its body read within `max_bytes` and the deadline."""
    content = _read_body(response, max_bytes, ends)
    return HttpResponse(
        status_code=response.status_code,
        headers=response.headers,
        content=content,
        url=url,
        elapsed_ms=(time.monotonic() - started) * 1000,
        redirects=hops,
    )


def _prepare(
    session: requests.Session, request: requests.Request, signer: Callable[[bytes], Mapping[str, str]] | None
) -> requests.PreparedRequest:
    prepared = session.prepare_request(request)
    if signer is not None:
        _sign(prepared, signer)
    return prepared


def _headers_for_redirect(headers: CaseInsensitiveDict, target: Any, next_target: Any, *, body: bool) -> None:
    """Drop what the next hop must not get: the Content-Type of a dropped body, and credentials and
    cookies when the host changes or https falls back to http."""
    if not body:
        headers.pop("Content-Type", None)
    if next_target.host != target.host or (target.scheme, next_target.scheme) == ("https", "http"):
        for name in ("Authorization", "Proxy-Authorization", "Cookie"):
            headers.pop(name, None)


def _sign(prepared: requests.PreparedRequest, signer: Callable[[bytes], Mapping[str, str]]) -> None:
    """Add the signer's headers, computed over the bytes that will go on the wire."""
    body = prepared.body
    if isinstance(body, str):
        # A form body is text; sign (and send) its UTF-8 bytes so signature and wire cannot differ.
        body = body.encode("utf-8")
        prepared.body = body
        prepared.prepare_content_length(body)
    elif body is not None and not isinstance(body, bytes):
        raise InvalidURL("a streamed request body cannot be signed")
    prepared.headers.update(signer(body or b""))


def _redirected_method(status: int, method: str, data, json, files):
    """Browsers' (and requests') rules: 303 → GET; 302 and POST-on-301 → GET; 307/308 keep all."""
    if (
        (status == 303 and method != "HEAD")
        or (status == 302 and method != "HEAD")
        or (status == 301 and method == "POST")
    ):
        return "GET", None, None, None
    return method, data, json, files


def _transmit(session, prepared, target: _Target, timeout, verify_tls: bool | str) -> requests.Response:
    try:
        return session.send(prepared, stream=True, timeout=timeout, verify=verify_tls, allow_redirects=False)
    except InvalidIPAddress as exc:  # raised by requests-hardened outside our adapter's reach
        ip = ipaddress.ip_address(str(exc.args[0]))
        label = refused_as(ip) or "not a public address"
        raise DestinationNotAllowed(_reason(target.host, ip, label, literal=_is_literal(target.host))) from None
    except requests.exceptions.ConnectTimeout:
        raise RequestTimeout(f"connecting to {target.host} timed out") from None
    except requests.exceptions.ReadTimeout:
        raise RequestTimeout(f"{target.host} did not answer in time") from None
    except requests.exceptions.SSLError:
        raise TLSFailure(f"TLS handshake with {target.host} failed (certificate not trusted or invalid)") from None
    except (requests.exceptions.InvalidURL, requests.exceptions.InvalidHeader, requests.exceptions.MissingSchema):
        raise InvalidURL("URL or headers are invalid") from None
    except requests.exceptions.ConnectionError as exc:
        raise ConnectionFailed(f"could not connect to {target.host}:{target.port}: {_cause(exc)}") from None
    except requests.exceptions.RequestException:
        raise ConnectionFailed(f"request to {target.host} failed") from None


def _cause(exc: BaseException) -> str:
    """A short, URL-free reason from the chain requests → urllib3 → socket."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            break
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, socket.gaierror | NameResolutionError):
            return "could not resolve host"
        if isinstance(seen, ConnectionResetError):
            return "connection reset"
        inner = seen.args[0] if seen.args and isinstance(seen.args[0], BaseException) else None
        seen = getattr(seen, "reason", None) or inner or seen.__cause__ or seen.__context__
    return "connection failed"


def _read_body(response: requests.Response, max_bytes: int, ends: float) -> bytes:
    """Stream the body, stopping at `max_bytes` or the deadline (Content-Length is not trusted)."""
    host = urlsplit(response.url).hostname or "the server"
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        response.close()
        raise ResponseTooLarge(f"response larger than {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        stream = response.iter_content(_CHUNK)
        while True:
            if ends != math.inf:
                remaining = ends - time.monotonic()
                if remaining <= 0:
                    raise RequestTimeout(f"{host} did not send the whole response before the deadline")
                _tighten_read_timeout(response, remaining)
            chunk = next(stream, None)
            if chunk is None:
                break
            size += len(chunk)
            if size > max_bytes:
                raise ResponseTooLarge(f"response larger than {max_bytes} bytes")
            chunks.append(chunk)
    except OutboundError:
        response.close()
        raise
    except requests.exceptions.ConnectionError as exc:
        response.close()
        if exc.args and isinstance(exc.args[0], ReadTimeoutError):
            raise RequestTimeout(f"{host} did not send the whole response in time") from None
        raise ConnectionFailed(f"{host} broke off the response") from None
    except requests.exceptions.RequestException:
        response.close()
        raise ConnectionFailed(f"{host} sent a malformed response") from None
    return b"".join(chunks)


def _drain(response: requests.Response, ends: float) -> None:
    """Read a redirect's (small) body so its connection can be reused; give up quietly if big."""
    with contextlib.suppress(OutboundError):
        _read_body(response, _CHUNK, ends)


def _tighten_read_timeout(response: requests.Response, remaining: float) -> None:
    """Let no single socket read outlive the deadline (urllib3 resets it on the next request)."""
    sock = getattr(getattr(response.raw, "connection", None), "sock", None)
    if sock is not None:
        current = sock.gettimeout()
        if current is None or current > remaining:
            sock.settimeout(max(remaining, 0.001))


# --- Retry-After ---------------------------------------------------------------------------------


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` value (delay-seconds or an HTTP date), or None.

    A date in the past gives 0.0; a value that is neither a number nor a date gives None.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
