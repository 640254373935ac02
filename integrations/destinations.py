"""Where outgoing HTTP may go: the address policy of `integrations.http` (docs/outbound-http.md).

The deny lists, the parsed settings (`OUTBOUND_ALLOW_PRIVATE_NETWORKS`, `OUTBOUND_ALLOWED_HOSTS`),
resolution with its short cache, and the URL checks. `integrations.http` runs them before every
request and hop (`parse`, `check_target`) and again on the address its adapter pins the connection
to (`policy`, `check_addresses`, `refusal`); `check_url` and `check_resolved` are re-exported there
for save-time validation and the one client that cannot go through `send()`.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from integrations.http_errors import ConnectionFailed, DestinationNotAllowed, InvalidURL

__all__ = [
    "DENIED_IPV4",
    "DENIED_IPV6",
    "Address",
    "Policy",
    "Target",
    "check_addresses",
    "check_resolved",
    "check_target",
    "check_url",
    "clear_resolve_cache",
    "current_policy",
    "is_literal",
    "parse",
    "refusal",
    "refused_as",
    "resolve_host",
]

RESOLVE_CACHE_SECONDS = 5.0
_ALLOWED_SCHEMES = frozenset({"http", "https"})


# --- the deny lists --------------------------------------------------------------------------

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _nets(label: str, *cidrs: str) -> list[tuple[Network, str]]:
    return [(ipaddress.ip_network(cidr), label) for cidr in cidrs]


# Order matters only for the wording of the reason (the first match names it).
DENIED_IPV4: list[tuple[Network, str]] = [
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
DENIED_IPV6: list[tuple[Network, str]] = [
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


def refused_as(ip: Address) -> str | None:
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
class Policy:
    """What the settings allow, parsed once per distinct settings value."""

    key: tuple[bool, tuple[str, ...]]
    allow_private: bool
    hosts: frozenset[str]
    networks: tuple[Network, ...]

    def trusts_host(self, host: str) -> bool:
        return self.allow_private or host in self.hosts

    def refused_as(self, ip: Address) -> str | None:
        if self.networks:
            plain = ip.ipv4_mapped if ip.version == 6 and ip.ipv4_mapped is not None else ip
            if any(plain.version == n.version and plain in n for n in self.networks):
                return None
        return refused_as(ip)


_policy_cache: Policy | None = None


def current_policy() -> Policy:
    """The current policy; settings are read on every call (tests change them) but parsed once."""
    global _policy_cache
    key = (bool(settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS), tuple(settings.OUTBOUND_ALLOWED_HOSTS or ()))
    cached = _policy_cache
    if cached is not None and cached.key == key:
        return cached
    hosts: set[str] = set()
    networks: list[Network] = []
    for entry in key[1]:
        entry = entry.strip().lower()
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
        except ValueError:
            hosts.add(entry.rstrip("."))
    _policy_cache = Policy(key, key[0], frozenset(hosts), tuple(networks))
    return _policy_cache


# --- resolution ----------------------------------------------------------------------------------

_resolve_cache: dict[tuple[str, int], tuple[float, tuple[Address, ...]]] = {}


def resolve_host(host: str, port: int) -> tuple[Address, ...]:
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


def clear_resolve_cache() -> None:
    """Forget every cached resolution (`integrations.http.close_pools`: tests, shutdown)."""
    _resolve_cache.clear()


# --- refusals ------------------------------------------------------------------------------------


def check_addresses(policy: Policy, host: str, addresses: tuple[Address, ...], *, literal: bool) -> None:
    """Refuse `host` if `policy` denies any one of `addresses` (the first denied names the reason)."""
    for ip in addresses:
        label = policy.refused_as(ip)
        if label is not None:
            raise DestinationNotAllowed(_reason(host, ip, label, literal=literal))


def refusal(host: str, ip: Address, label: str | None) -> DestinationNotAllowed:
    """The refusal of `host` at `ip` (`label` from a `refused_as`; None: not a public address)."""
    return DestinationNotAllowed(_reason(host, ip, label or "not a public address", literal=is_literal(host)))


def is_literal(host: str) -> bool:
    """Whether `host` is an IP address as written rather than a name."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _reason(host: str, ip: Address, label: str, *, literal: bool) -> str:
    """`127.0.0.1 is a loopback address` for an address the tenant wrote; for a name only that it
    resolves to an address that is not public: saying which address (or which kind) would let a
    tenant map the deployment's internal DNS through refusals."""
    if literal:
        return f"{host} is {label}"
    return f"{host} resolves to an address that is not public (private, loopback, link-local or reserved)"


# --- URL checks ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int


def parse(url: str) -> Target:
    """Scheme, host and port of `url`; `InvalidURL` or `DestinationNotAllowed` (scheme, userinfo)."""
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
    return Target(scheme, host, port or (443 if scheme == "https" else 80))


def check_target(target: Target, *, resolve: bool = True) -> None:
    """Refuse a target the policy denies: a literal address, a loopback name, or (when `resolve`)
    a name any of whose addresses is denied. A name that does not resolve is `ConnectionFailed`."""
    policy = current_policy()
    if policy.trusts_host(target.host):
        return
    try:
        literal: Address | None = ipaddress.ip_address(target.host)
    except ValueError:
        literal = None
    if literal is not None:
        check_addresses(policy, target.host, (literal,), literal=True)
    elif target.host == "localhost" or target.host.endswith(".localhost"):
        raise DestinationNotAllowed(f"{target.host} is a loopback name")
    elif resolve:
        check_addresses(policy, target.host, resolve_host(target.host, target.port), literal=False)


def check_url(url: str, *, resolve: bool = True) -> None:
    """Validate `url` without sending: http/https only, no credentials, a host, and no address of it
    refused by the SSRF policy. Raises `DestinationNotAllowed` or `InvalidURL`.

    For save-time validation (connection base URLs, callback URLs). A name that does not resolve
    *now* is accepted (DNS may be down at save time); every `send()` checks again anyway.
    """
    target = parse(url)
    try:
        check_target(target, resolve=resolve)
    except ConnectionFailed:
        return


def check_resolved(host: str, addresses: list[str]) -> None:
    """Refuse (`DestinationNotAllowed`) unless the policy allows `host` at every one of `addresses`.

    For the one client that cannot go through `send()`: the official LiveKit SDK speaks aiohttp, so its
    session resolves through a resolver that calls this, and connects only to addresses it accepted.
    """
    policy = current_policy()
    if policy.trusts_host(host.rstrip(".")):
        return
    if host == "localhost" or host.endswith(".localhost"):
        raise DestinationNotAllowed(f"{host} is a loopback name")
    parsed = tuple(ipaddress.ip_address(address.split("%")[0]) for address in addresses)
    check_addresses(policy, host, parsed, literal=False)
