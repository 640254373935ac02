"""challenge_response: declarative steps against a real server that wants an HMAC of a single-use nonce."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time

import pytest

from integrations.executor import execute
from integrations.models import ApiCallLog
from tests.support.concurrency import run_threads
from tests.support.http_servers import HttpServer

API_SECRET = "hmac-secret-7d1c9e04b2a8f6e3"
CLIENT = "acme-client"


class ChallengeServer:
    """POST /auth/nonce → {"data": {"nonce"}}; POST /auth/session {"client", "nonce", "signature",
    "timestamp"} → {"session": {"token"}} when the signature is HMAC-SHA256(secret, nonce) and the nonce
    is fresh and unused; GET /data wants `Authorization: Session <token>` (else 401); GET /soft answers
    200 {"error": {"code": "TOKEN_EXPIRED"}} instead of 401."""

    def __init__(self, server: HttpServer) -> None:
        self.http = server
        self.nonces: set[str] = set()
        self.sessions: set[str] = set()
        self.refused: list[str] = []
        self.lock = threading.Lock()
        server.route("POST", "/auth/nonce", self._nonce)
        server.route("POST", "/auth/session", self._session)
        server.route("GET", "/data", self._data)
        server.route("GET", "/soft", self._soft)

    def _nonce(self, request):
        nonce = secrets.token_hex(16)
        with self.lock:
            self.nonces.add(nonce)
        return 200, {}, {"data": {"nonce": nonce}}

    def _session(self, request):
        body = request.json()
        with self.lock:
            fresh = body.get("nonce") in self.nonces
            self.nonces.discard(body.get("nonce"))  # single use, right or wrong
        expected = hmac.new(API_SECRET.encode(), str(body.get("nonce")).encode(), hashlib.sha256).hexdigest()
        if not fresh:
            self.refused.append("nonce")
            return 401, {}, {"error": "unknown or used nonce"}
        if not hmac.compare_digest(expected, str(body.get("signature"))) or body.get("client") != CLIENT:
            self.refused.append("signature")
            return 401, {}, {"error": "bad signature"}
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.sessions.add(token)
        return 200, {}, {"session": {"token": token}}

    def _valid(self, request) -> bool:
        header = request.header("Authorization") or ""
        return header.startswith("Session ") and header[8:] in self.sessions

    def _data(self, request):
        if not self._valid(request):
            return 401, {}, {"error": "no session"}
        return 200, {}, {"ok": True, "client": request.header("X-Client")}

    def _soft(self, request):
        return 200, {}, {"ok": True} if self._valid(request) else {"error": {"code": "TOKEN_EXPIRED"}}

    def expire_sessions(self) -> None:
        with self.lock:
            self.sessions.clear()


@pytest.fixture
def challenge_server():
    with HttpServer() as server:
        yield ChallengeServer(server)


def steps_for(server: HttpServer) -> list[dict]:
    return [
        {"name": "nonce", "method": "POST", "url": server.url("/auth/nonce"), "extract": {"nonce": "data.nonce"}},
        {
            "name": "sign",
            "method": "POST",
            "url": server.url("/auth/session"),
            "body_type": "json",
            "body": '{"client": "{{client}}", "nonce": "{{nonce}}", "signature": "{{hmac_sha256 api_secret nonce}}", '
            '"timestamp": "{{now_unix}}"}',
            "extract": {"session_token": "session.token"},
        },
    ]


@pytest.fixture
def challenge_credential(make_credential, challenge_server):
    def make(secret=API_SECRET, **config):
        return make_credential(
            "challenge_response",
            config={
                "steps": steps_for(challenge_server.http),
                "header": {"Authorization": "Session {{session_token}}", "X-Client": "{{client}}"},
                "variables": {"client": CLIENT},
                "token_lifetime": 60,
                **config,
            },
            secrets={"values": {"api_secret": secret}},
        )

    return make


@pytest.fixture
def data_endpoint(make_endpoint, make_connection, challenge_server):
    def make(credential, path="/data"):
        connection = make_connection(credential=credential, base_url=challenge_server.http.base_url)
        return make_endpoint(connection, path=path)

    return make


def test_the_steps_sign_the_nonce_and_the_session_is_reused(challenge_credential, data_endpoint, challenge_server):
    endpoint = data_endpoint(challenge_credential())

    results = [execute(endpoint) for _ in range(3)]

    assert [r.status for r in results] == ["success"] * 3
    assert results[0].body == {"ok": True, "client": CLIENT}
    assert challenge_server.http.count("/auth/nonce") == 1
    assert challenge_server.http.count("/auth/session") == 1
    signed = next(r for r in challenge_server.http.requests if r.path == "/auth/session").json()
    assert abs(int(signed["timestamp"]) - time.time()) < 5


def test_a_wrong_secret_is_refused_and_the_call_is_a_failure(challenge_credential, data_endpoint, challenge_server):
    endpoint = data_endpoint(challenge_credential(secret="not-the-secret-123"))

    result = execute(endpoint)

    assert result.status == "failure"
    assert result.error == "credential could not be obtained: step 2 (sign) answered HTTP 401"
    assert challenge_server.refused == ["signature"]
    assert challenge_server.http.count("/data") == 0


def test_a_used_nonce_is_refused_by_the_server(challenge_server):
    import requests

    nonce = requests.post(challenge_server.http.url("/auth/nonce"), timeout=5).json()["data"]["nonce"]
    signature = hmac.new(API_SECRET.encode(), nonce.encode(), hashlib.sha256).hexdigest()
    body = {"client": CLIENT, "nonce": nonce, "signature": signature}

    first = requests.post(challenge_server.http.url("/auth/session"), json=body, timeout=5)
    replay = requests.post(challenge_server.http.url("/auth/session"), json=body, timeout=5)

    assert first.status_code == 200
    assert replay.status_code == 401
    assert challenge_server.refused == ["nonce"]


def test_the_lifetime_ends_and_the_steps_run_again(challenge_credential, data_endpoint, challenge_server):
    endpoint = data_endpoint(challenge_credential(token_lifetime=1))

    execute(endpoint)
    time.sleep(0.95)
    result = execute(endpoint)

    assert result.status == "success"
    assert challenge_server.http.count("/auth/session") == 2


def test_a_401_runs_the_steps_again_once(challenge_credential, data_endpoint, challenge_server):
    endpoint = data_endpoint(challenge_credential())
    execute(endpoint)
    challenge_server.expire_sessions()

    result = execute(endpoint)

    assert result.status == "success"
    assert result.attempts == 2
    assert challenge_server.http.count("/auth/session") == 2


def test_a_body_condition_runs_the_steps_again(challenge_credential, data_endpoint, challenge_server):
    credential = challenge_credential(expired_token_condition="error.code == 'TOKEN_EXPIRED'")
    endpoint = data_endpoint(credential, "/soft")
    execute(endpoint)
    challenge_server.expire_sessions()

    result = execute(endpoint)

    assert result.body == {"ok": True}
    assert challenge_server.http.count("/auth/session") == 2


def test_a_query_template_places_the_result_in_the_query(make_credential, data_endpoint, challenge_server):
    credential = make_credential(
        "challenge_response",
        config={"steps": steps_for(challenge_server.http)[:1], "query": {"sig": "{{hmac_sha256 api_secret nonce}}"}},
        secrets={"values": {"api_secret": API_SECRET}},
    )
    received = []
    challenge_server.http.route("GET", "/q", lambda r: (received.append(r.query.get("sig")), (200, {}, {}))[1])

    result = execute(data_endpoint(credential, "/q"))

    (nonce,) = challenge_server.nonces  # issued by the step, never consumed
    assert result.status == "success"
    assert received == [hmac.new(API_SECRET.encode(), nonce.encode(), hashlib.sha256).hexdigest()]
    assert ApiCallLog.objects.get().url.endswith("/q?sig=••••")


def test_a_secret_from_env_is_resolved_at_call_time(make_credential, data_endpoint, challenge_server, monkeypatch):
    credential = make_credential(
        "challenge_response",
        config={
            "steps": steps_for(challenge_server.http),
            "header": {"Authorization": "Session {{session_token}}"},
            "variables": {"client": CLIENT},
        },
        secrets={"values": {"api_secret": "env:SWB_TEST_CHALLENGE_SECRET"}},
    )
    endpoint = data_endpoint(credential)

    missing = execute(endpoint)
    monkeypatch.setenv("SWB_TEST_CHALLENGE_SECRET", API_SECRET)
    present = execute(endpoint)

    assert missing.error == (
        "credential could not be obtained: values: environment variable SWB_TEST_CHALLENGE_SECRET is not set"
    )
    assert present.status == "success", present.error


def test_50_concurrent_calls_run_the_steps_once(
    transactional_db, tenant, challenge_credential, data_endpoint, challenge_server
):
    endpoint = data_endpoint(challenge_credential())

    statuses = run_threads(50, lambda: execute(endpoint, log=False).status)

    assert statuses == ["success"] * 50
    assert challenge_server.http.count("/auth/session") == 1


def test_secrets_and_session_tokens_are_never_shown(
    challenge_credential, data_endpoint, challenge_server, owner_client, caplog
):
    credential = challenge_credential()
    endpoint = data_endpoint(credential)
    challenge_server.http.route("GET", "/echo-auth", lambda r: (200, {}, {"auth": r.header("Authorization")}))
    with caplog.at_level("DEBUG"):
        results = [execute(endpoint).to_dict(), execute(data_endpoint(credential, "/echo-auth")).to_dict()]
        test = owner_client.post(f"/api/v1/connections/{endpoint.connection_id}/test").json()
    shown = [
        str(results),
        str(test),
        caplog.text,
        str(list(ApiCallLog.objects.values())),
        owner_client.get(f"/api/v1/credentials/{credential.pk}").content.decode(),
    ]

    assert test["ok"] is True
    assert test["auth"]["steps"] == 2
    assert test["auth"]["obtained"] == ["nonce", "session_token"]
    assert challenge_server.sessions
    for secret in [API_SECRET, *challenge_server.sessions]:
        for where in shown:
            assert secret not in where


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([], "steps: Must be a non-empty list of steps."),
        ([{"name": "nonce", "url": "https://x.example/{{#if}}"}], "step 1 (nonce): url:"),
        ([{"url": "https://x.example/n", "method": "TRACE"}], "step 1: method: must be one of"),
        ([{"url": "https://x.example/n"}, {"name": "sign", "url": ""}], "step 2 (sign): url: required"),
        ([{"url": "https://x.example/n", "extract": {"nonce": "data.[["}}], "step 1: extract: nonce: invalid path"),
        ([{"url": "https://x.example/n", "body_type": "json", "body": '{"a": {{x}'}], "step 1: body:"),
        ([{"url": "https://x.example/n", "headers": {"Bad Name": "x"}}], "step 1: headers: 'Bad Name'"),
        ([{"url": "https://x.example/n", "colour": "red"}], "step 1: colour: unknown field"),
    ],
)
def test_steps_are_validated_on_save_naming_the_step_and_field(owner_client, steps, message):
    response = owner_client.post(
        "/api/v1/credentials",
        {
            "name": "Challenge",
            "type": "challenge_response",
            "config": {"steps": steps, "header": {"Authorization": "Session {{session_token}}"}},
            "secrets": {"values": {"api_secret": "s"}},
        },
        format="json",
    )

    assert response.status_code == 400
    assert message in str(response.json()), response.json()


def test_a_final_template_is_required(owner_client):
    response = owner_client.post(
        "/api/v1/credentials",
        {
            "name": "Challenge",
            "type": "challenge_response",
            "config": {"steps": [{"url": "https://x.example/n"}], "token_lifetime": 0},
            "secrets": {"values": {"api_secret": "s"}},
        },
        format="json",
    )

    details = response.json()["details"]["config"]
    assert response.status_code == 400
    assert details["header"] == ["Give a header or query template to send the result."]
    assert details["token_lifetime"] == ["Must be a whole number of seconds from 1 to 86400."]
