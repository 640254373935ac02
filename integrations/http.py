"""The only outgoing-HTTP client of Switchboard, with SSRF protection (see docs/outbound-http.md).

Everything that leaves the platform — tenant endpoints, OAuth token URLs, challenge steps, webhook
callbacks, the AI provider — goes through `send()`. It is built on requests-hardened, whose adapter
resolves the host at connect time, checks the address and pins the connection to it (so a DNS answer
that changes between check and connect cannot redirect the socket). On top of that this module:

- checks *every* address a name resolves to against an explicit deny list (requests-hardened checks
  only the first, and Python's `is_private`/`is_global` miss ranges such as IPv4-compatible IPv6);
  the deny list, the settings and the URL checks are `integrations.destinations`;
- re-checks the address the connection is actually pinned to against the same deny list;
- follows redirects itself (only when asked), checking every hop before it is requested;
- enforces connect/read timeouts, a total deadline and a response size limit while streaming;
- keeps one pooled keep-alive session per `pool_key`, without cookie persistence or proxy/netrc
  settings from the environment (a proxy would bypass the address pinning).

Error messages never contain URLs, credentials or header values, only host names and reasons. The
errors (`integrations.http_errors`) and `check_url` / `check_resolved` are this module's public API.
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

from integrations import destinations
from integrations.destinations import check_resolved, check_url
from integrations.http_errors import (
    ConnectionFailed,
    DestinationNotAllowed,
    InvalidURL,
    OutboundError,
    RequestTimeout,
    ResponseTooLarge,
    TLSFailure,
    TooManyRedirects,
)

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
_CHUNK = 64 * 1024
_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})


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
        policy = destinations.current_policy()
        host = (urlsplit(request.url).hostname or "").rstrip(".")
        if policy.trusts_host(host):
            return HTTPAdapter.build_connection_pool_key_attributes(self, request, verify, cert)
        if policy.networks:
            return self._pinned_by_us(policy, host, request, verify, cert)
        try:
            host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        except InvalidIPAddress as exc:
            ip = ipaddress.ip_address(str(exc.args[0]))
            raise destinations.refusal(host, ip, policy.refused_as(ip)) from None
        ip = ipaddress.ip_address(host_params["host"].strip("[]"))
        label = policy.refused_as(ip)
        if label is not None:
            raise destinations.refusal(host, ip, label)
        return host_params, pool_kwargs

    def _pinned_by_us(self, policy: destinations.Policy, host: str, request, verify, cert):
        host_params, pool_kwargs = HTTPAdapter.build_connection_pool_key_attributes(self, request, verify, cert)
        port = host_params["port"] or (443 if self._is_https_proto else 80)
        try:
            addresses = destinations.resolve_host(host, port)
        except ConnectionFailed:
            raise requests.ConnectionError("could not resolve host") from None
        destinations.check_addresses(policy, host, addresses, literal=destinations.is_literal(host))
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
    destinations.clear_resolve_cache()


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
        target = destinations.parse(url)
        destinations.check_target(target)
        request = requests.Request(
            method, url, headers=request_headers, params=params, data=data, json=json, files=files
        )
        prepared = _prepare(session, request, signer)
        timeout = _hop_timeout(ends, connect_timeout, read_timeout)
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
        body = any(part is not None for part in (data, json, files))
        _headers_for_redirect(request_headers, target, destinations.parse(next_url), body=body)
        url, params = next_url, None


def _hop_timeout(ends: float, connect_timeout: float, read_timeout: float) -> tuple[float, float]:
    """The (connect, read) timeouts of one hop, capped by the time left before the deadline."""
    remaining = ends - time.monotonic()
    if remaining <= 0:
        raise RequestTimeout("deadline exceeded")
    return min(connect_timeout, remaining), min(read_timeout, remaining)


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


def _transmit(session, prepared, target: destinations.Target, timeout, verify_tls: bool | str) -> requests.Response:
    try:
        return session.send(prepared, stream=True, timeout=timeout, verify=verify_tls, allow_redirects=False)
    except InvalidIPAddress as exc:  # raised by requests-hardened outside our adapter's reach
        ip = ipaddress.ip_address(str(exc.args[0]))
        raise destinations.refusal(target.host, ip, destinations.refused_as(ip)) from None
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
