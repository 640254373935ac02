"""A local LiveKit server API for tests: Twirp over HTTP on 127.0.0.1, protobuf from `livekit-protocol`.

It answers the real `livekit-api` client exactly as a LiveKit server does, for the three methods the
dialer uses (AgentDispatchService/CreateDispatch, SIP/CreateSIPParticipant, RoomService/DeleteRoom):

- verifies the client's JWT (HS256 with the server's key and secret, issuer = key, not expired) and
  the grants each method needs (dispatch: `roomAdmin` for that room; SIP: `sip.call`; delete:
  `roomCreate`); a bad token is Twirp's 401 `unauthenticated`, a missing grant 403;
- decodes the request body with the method's protobuf class and records it (`server.calls`);
- answers success, or what `server.fail(method, ...)` scripted: a Twirp error with a code, an HTTP
  status and metadata (`sip_status_code`, `sip_status`), as LiveKit reports a failed SIP call;
- `server.unknown_trunks` makes CreateSIPParticipant answer 404 `not_found` for those trunk ids;
- `server.delays[method] = seconds` answers that method late (a phone that rings a while).

Use the `livekit_server` fixture (skips with a notice unless the voice requirements are installed;
fails under CI=true, where they must be).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.http_servers import HttpServer, RecordedRequest

API_KEY = "APItestkey123"
API_SECRET = "test-secret-of-at-least-thirty-two-characters"
VOICE_HINT = "LiveKit tests need the voice requirements: .venv/bin/pip install -r requirements-voice.txt"
_skipped: list[str] = []


def require_voice_packages() -> None:
    """Skip (locally) or fail (CI=true) when livekit-api / livekit-agents are not installed."""
    try:
        import livekit.agents
        import livekit.api  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the LiveKit tests: {VOICE_HINT}")
        pytest.skip(VOICE_HINT)


@dataclass
class TwirpCall:
    service: str
    method: str
    message: Any  # the decoded protobuf request
    claims: Any  # livekit.api.access_token.Claims of the verified token
    raw: RecordedRequest


def _methods() -> dict[tuple[str, str], tuple[type, type, str]]:
    from livekit.protocol import agent_dispatch, room, sip

    return {
        ("AgentDispatchService", "CreateDispatch"): (
            agent_dispatch.CreateAgentDispatchRequest,
            agent_dispatch.AgentDispatch,
            "dispatch",
        ),
        ("SIP", "CreateSIPParticipant"): (sip.CreateSIPParticipantRequest, sip.SIPParticipantInfo, "sip"),
        ("RoomService", "DeleteRoom"): (room.DeleteRoomRequest, room.DeleteRoomResponse, "delete"),
    }


class LiveKitServer:
    def __init__(self, http: HttpServer, api_key: str = API_KEY, api_secret: str = API_SECRET) -> None:
        self.http = http
        self.api_key = api_key
        self.api_secret = api_secret
        self.calls: list[TwirpCall] = []
        self.unknown_trunks: set[str] = set()
        self.delays: dict[str, float] = {}
        self._failures: dict[str, tuple[int, dict]] = {}
        self._lock = threading.Lock()
        self._methods = _methods()
        http.route("POST", "/twirp/*", self._handle)

    @property
    def url(self) -> str:
        return self.http.url("").rstrip("/")

    def fail(self, method: str, *, status: int, code: str, msg: str = "", sip_status_code: int | None = None) -> None:
        """Answer `method` (e.g. "CreateSIPParticipant") with a Twirp error from now on."""
        meta = {}
        if sip_status_code is not None:
            meta = {"sip_status_code": str(sip_status_code), "sip_status": msg or "SIP error"}
        body = {"code": code, "msg": msg or code, **({"meta": meta} if meta else {})}
        with self._lock:
            self._failures[method] = (status, body)

    def of(self, method: str) -> list[TwirpCall]:
        return [call for call in self.calls if call.method == method]

    def _handle(self, request: RecordedRequest):
        _, _, rest = request.path.partition("/twirp/livekit.")
        service, _, method = rest.partition("/")
        known = self._methods.get((service, method))
        if known is None:
            return _error(404, "bad_route", f"no handler for {service}/{method}")
        request_class, response_class, grant = known
        claims, refusal = self._verify(request.header("Authorization") or "")
        if refusal:
            return refusal
        message = request_class.FromString(request.body)
        problem = _missing_grant(grant, claims, message)
        if problem:
            return _error(403, "permission_denied", problem)
        with self._lock:
            self.calls.append(TwirpCall(service, method, message, claims, request))
            failure = self._failures.get(method)
        time.sleep(self.delays.get(method, 0.0))
        if failure is not None:
            return failure[0], {"Content-Type": "application/json"}, json.dumps(failure[1])
        if method == "CreateSIPParticipant" and message.sip_trunk_id in self.unknown_trunks:
            return _error(404, "not_found", "requested sip trunk does not exist")
        return 200, {"Content-Type": "application/protobuf"}, _answer(response_class, message).SerializeToString()

    def _verify(self, header: str):
        from livekit.api import TokenVerifier

        token = header.removeprefix("Bearer ").strip()
        try:
            return TokenVerifier(self.api_key, self.api_secret).verify(token), None
        except Exception as exc:
            return None, _error(401, "unauthenticated", f"invalid token: {type(exc).__name__}")


def _missing_grant(grant: str, claims, message) -> str:
    video, sip = claims.video, claims.sip
    if grant == "dispatch" and not (video and video.room_admin and video.room == message.room):
        return "roomAdmin for the dispatch's room is required"
    if grant == "sip" and not (sip and sip.call):
        return "the sip.call grant is required"
    if grant == "delete" and not (video and video.room_create):
        return "roomCreate is required"
    return ""


def _answer(response_class: type, message):
    name = response_class.__name__
    if name == "AgentDispatch":
        return response_class(
            id="AD_test1", agent_name=message.agent_name, room=message.room, metadata=message.metadata
        )
    if name == "SIPParticipantInfo":
        return response_class(
            participant_id="PA_callee1",
            participant_identity=message.participant_identity,
            room_name=message.room_name,
            sip_call_id="SCL_test1",
        )
    return response_class()


def _error(status: int, code: str, msg: str):
    return status, {"Content-Type": "application/json"}, json.dumps({"code": code, "msg": msg})


@pytest.fixture
def livekit_server() -> Iterator[LiveKitServer]:
    require_voice_packages()
    with HttpServer() as http:
        yield LiveKitServer(http)


def pytest_runtest_logreport(report) -> None:
    if report.skipped and isinstance(report.longrepr, tuple) and VOICE_HINT in str(report.longrepr[2]):
        _skipped.append(report.nodeid)


def pytest_terminal_summary(terminalreporter) -> None:
    if _skipped:
        terminalreporter.write_sep("!", f"NOTICE: {len(_skipped)} voice test(s) SKIPPED — livekit packages missing")
        terminalreporter.write_line(
            "Install them with .venv/bin/pip install -r requirements-voice.txt; CI always does."
        )
