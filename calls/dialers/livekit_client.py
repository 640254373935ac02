"""The official `livekit-api` client, opened the way Switchboard needs it (SPEC §16).

- One event loop per use: sync Celery code calls `run(trunk, work)`, which runs `work(api)` in a fresh
  `asyncio.run` (`run_sync`) and closes the client and its aiohttp session before returning.
- SSRF: the trunk's URL is a tenant's input, and the SDK speaks aiohttp rather than our
  `integrations.http`, so the URL is checked with `http.check_url` first and the session resolves
  names through `_GuardedResolver`, which refuses any address the outbound policy refuses
  (`http.check_resolved`) at connect time — the same policy, owned by `integrations.http`.
- No automatic re-sends: the SDK's region failover replays a request on a 5xx; replaying
  CreateSIPParticipant could ring a phone twice, so failover is off.
- Credentials: `api_key`/`api_secret` from the trunk's encrypted `dialer_secrets`, `env:`/`file:`
  references resolved here, at use.
"""

from __future__ import annotations

import asyncio
import importlib.util
import socket
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar, cast

from integrations import http
from integrations.auth import secret_refs

if TYPE_CHECKING:
    from livekit.api import LiveKitAPI

    from calls.models import SipTrunk

T = TypeVar("T")
INSTALL_HINT = "the livekit dialer needs the voice requirements (pip install -r requirements-voice.txt)"
# Seconds for one API request other than dialing (the dial's own timeout follows its ringing_timeout).
REQUEST_TIMEOUT = 10.0


class LiveKitUnavailable(Exception):
    """The trunk cannot reach LiveKit before anything is sent: missing package, secret or a refused URL."""


def installed() -> bool:
    """Whether the optional voice dependencies (livekit-api) are importable."""
    return importlib.util.find_spec("livekit.api") is not None


def http_url(url: str) -> str:
    """LiveKit URLs are often written `wss://…`; the server API is the same host over https."""
    for ws, web in (("wss://", "https://"), ("ws://", "http://")):
        if url.lower().startswith(ws):
            return web + url[len(ws) :]
    return url


def credentials(trunk: SipTrunk) -> tuple[str, str]:
    """The trunk's (api_key, api_secret), references resolved; LiveKitUnavailable names what is missing."""
    stored = trunk.dialer_secrets or {}
    try:
        key, secret = (secret_refs.resolve(stored.get(name) or "") for name in ("api_key", "api_secret"))
    except secret_refs.SecretUnavailable as exc:
        raise LiveKitUnavailable(str(exc)) from None
    if not key or not secret:
        raise LiveKitUnavailable("the trunk has no LiveKit api_key and api_secret (dialer_secrets)")
    return key, secret


class _GuardedResolver:
    """aiohttp's resolver contract, refusing the addresses the outbound policy refuses."""

    def __init__(self) -> None:
        from aiohttp.resolver import ThreadedResolver

        self._inner = ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list:
        results = await self._inner.resolve(host, port, family)
        http.check_resolved(host, [result["host"] for result in results])
        return results

    async def close(self) -> None:
        await self._inner.close()


def _session() -> Any:
    import aiohttp

    # _GuardedResolver keeps aiohttp's resolver contract by delegation (it wraps ThreadedResolver).
    connector = aiohttp.TCPConnector(resolver=cast(Any, _GuardedResolver()), limit=4)
    # trust_env off: a proxy from the environment would bypass the address check.
    return aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT), trust_env=False
    )


def run(trunk: SipTrunk, work: Callable[[LiveKitAPI], Awaitable[T]]) -> T:
    """Run `work(api)` against the trunk's LiveKit server in its own event loop, then close everything.

    Raises LiveKitUnavailable (nothing was sent) for a missing package or secret or a refused URL;
    the SDK's own errors (`livekit.api.ServerError`, aiohttp errors, timeouts) pass through.
    """
    if not installed():
        raise LiveKitUnavailable(INSTALL_HINT)
    url = http_url(str((trunk.dialer_config or {}).get("url") or ""))
    try:
        http.check_url(url)
    except http.OutboundError as exc:
        raise LiveKitUnavailable(str(exc)) from None
    key, secret = credentials(trunk)

    async def main() -> T:
        from livekit.api import LiveKitAPI

        # The SDK leaves a session it did not create open: this one is closed here, always.
        async with _session() as session:
            return await work(LiveKitAPI(url, key, secret, session=session, failover=False))

    return run_sync(main)


def run_sync(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """`asyncio.run(main())` from synchronous code — in a helper thread when this thread already runs
    an event loop (an async host, or a test harness's), where asyncio.run would refuse."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="livekit-client") as pool:
        return pool.submit(lambda: asyncio.run(main())).result()


def describe(exc: BaseException) -> dict[str, Any]:
    """What an SDK error says, for a CallEvent's detail: code, message and SIP status, never a secret."""
    detail: dict[str, Any] = {"error": type(exc).__name__}
    for name in ("code", "message", "status", "sip_status_code", "sip_status"):
        value = getattr(exc, name, None)
        if value not in (None, ""):
            detail[name] = value if isinstance(value, (int, str)) else str(value)
    if len(detail) == 1 and str(exc):
        detail["message"] = str(exc)[:300]
    return detail
