"""Signed outgoing requests (SPEC §17): the secret shown once, rotated, encrypted; every request signed over
its exact bytes; and the documented Python and Node recipes verifying real requests a local API received."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time
from pathlib import Path

import pytest
from django.db import connection as db
from django.test import Client

from integrations import executor, signing
from integrations.models import Connection
from tenants.models import AuditEvent, Role

DOCS = Path(__file__).resolve().parents[2] / "docs" / "integrations.md"


def recipe(language: str) -> str:
    """The fenced code block that follows `<!-- recipe:<language> -->` in docs/integrations.md."""
    match = re.search(rf"<!-- recipe:{language} -->\n```\w+\n(.*?)\n```", DOCS.read_text(), re.S)
    assert match, f"no {language} recipe in {DOCS}"
    return match.group(1)


def python_verdicts(secret: str, requests_: list[tuple[dict, bytes]]) -> list[bool]:
    namespace: dict = {}
    exec(recipe("python"), namespace)
    return [namespace["verify_switchboard_request"](secret, headers, body) for headers, body in requests_]


NODE_HARNESS = """
const cases = JSON.parse(require("fs").readFileSync(0, "utf8"));
console.log(JSON.stringify(cases.map((c) => verifySwitchboardRequest(c.secret, c.headers, Buffer.from(c.body, "base64")))));
"""


def node_verdicts(secret: str, requests_: list[tuple[dict, bytes]]) -> list[bool]:
    cases = [
        {"secret": secret, "headers": {k.lower(): v for k, v in h.items()}, "body": base64.b64encode(b).decode()}
        for h, b in requests_
    ]
    done = subprocess.run(
        ["node", "-e", recipe("node") + NODE_HARNESS],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


def received(server) -> list[tuple[dict, bytes]]:
    return [(dict(r.headers), r.body) for r in server.requests]


@pytest.fixture
def admin_client(clients):
    return clients[Role.ADMIN]


def create_signed_connection(admin_client, http_server, **fields) -> tuple[Connection, str]:
    body = {
        "name": "Signed API",
        "base_url": http_server.base_url,
        "sign_requests": True,
        "retry": {"max_retries": 2, "base_delay": 0.01, "max_delay": 0.05},
        **fields,
    }
    created = admin_client.post("/api/v1/connections", body, format="json")
    assert created.status_code == 201, created.content
    return Connection.objects.get(pk=created.json()["id"]), created.json()["signing_secret"]


def test_the_secret_is_shown_once_and_stored_encrypted(admin_client, http_server):
    connection, secret = create_signed_connection(admin_client, http_server)
    assert secret.startswith("swb_sig_") and len(secret) >= 40
    assert connection.signing_secret == secret

    # never again: not on read, not on a write that leaves signing on
    path = f"/api/v1/connections/{connection.pk}"
    assert "signing_secret" not in admin_client.get(path).json()
    assert admin_client.get(path).json()["sign_requests"] is True
    assert "signing_secret" not in admin_client.patch(path, {"sign_requests": True}, format="json").json()
    assert "signing_secret" not in admin_client.patch(path, {"description": "x"}, format="json").json()
    with db.cursor() as cursor:
        pk = Connection._meta.pk.get_db_prep_value(connection.pk, db)
        cursor.execute("SELECT signing_secret FROM integrations_connection WHERE id = %s", [pk])
        raw = bytes(cursor.fetchone()[0])
    assert secret.encode() not in raw and raw.startswith(b"gAAAA")  # Fernet ciphertext


def test_turning_signing_off_forgets_the_secret_and_on_again_makes_a_new_one(admin_client, http_server):
    connection, first = create_signed_connection(admin_client, http_server)
    path = f"/api/v1/connections/{connection.pk}"
    off = admin_client.patch(path, {"sign_requests": False}, format="json")
    assert "signing_secret" not in off.json()
    connection.refresh_from_db()
    assert (connection.sign_requests, connection.signing_secret) == (False, "")
    again = admin_client.patch(path, {"sign_requests": True}, format="json").json()
    assert again["signing_secret"].startswith("swb_sig_") and again["signing_secret"] != first


def test_rotation_returns_a_new_secret_once_and_needs_the_admin_role(clients, admin_client, http_server, other_client):
    connection, first = create_signed_connection(admin_client, http_server)
    path = f"/api/v1/connections/{connection.pk}/signing-secret"

    assert clients[Role.MEMBER].post(path).status_code == 403
    assert other_client.post(path).status_code == 404
    rotated = admin_client.post(path)

    assert rotated.status_code == 200
    assert set(rotated.json()) == {"signing_secret"}
    assert rotated.json()["signing_secret"] != first
    connection.refresh_from_db()
    assert connection.signing_secret == rotated.json()["signing_secret"]
    assert AuditEvent.objects.filter(action="rotated", object_id=str(connection.pk)).count() == 1


BODIES = [
    {"method": "GET", "path": "/echo?q=ü"},
    {"method": "POST", "body_type": "json", "body_template": '{"name": "Zoë", "n": {{n}}}'},
    {"method": "POST", "body_type": "form", "body_template": json.dumps({"name": "a&b=ç", "n": "{n}"})},
    {
        "method": "POST",
        "body_type": "multipart",
        "body_template": json.dumps(
            {"fields": {"note": "hi"}, "files": {"doc": {"content": "AAEC", "encoding": "base64"}}}
        ),
    },
    {"method": "PUT", "body_type": "raw", "body_template": "plain text {n}"},
]


def test_every_body_type_is_signed_and_both_recipes_verify_it(admin_client, http_server, make_endpoint):
    connection, secret = create_signed_connection(admin_client, http_server)
    for index, fields in enumerate(BODIES):
        fields = {"path": "/echo", "parameters": [{"name": "n", "location": "body", "type": "integer"}], **fields}
        endpoint = make_endpoint(connection, tool_name=f"signed_{index}", **fields)
        assert executor.execute(endpoint, params={"n": 7}).ok

    requests_ = received(http_server)
    assert len(requests_) == len(BODIES)
    assert all(h["X-Switchboard-Request-Signature"].startswith("v1=") for h, _ in requests_)
    assert python_verdicts(secret, requests_) == [True] * len(BODIES)
    assert node_verdicts(secret, requests_) == [True] * len(BODIES)


def test_retries_and_redirect_hops_are_each_signed(admin_client, http_server, make_endpoint):
    connection, secret = create_signed_connection(admin_client, http_server, follow_redirects=True)
    retried = make_endpoint(connection, path="/retry-after?seconds=0&times=1&status=503", tool_name="retried")
    redirected = make_endpoint(connection, path="/redirect?to=/echo&code=307", tool_name="redirected", method="POST")
    redirected.body_type, redirected.body_template = "text", "moved body"
    redirected.save()

    assert executor.execute(retried).attempts == 2
    assert executor.execute(redirected).ok

    requests_ = received(http_server)
    assert [r.path for r in http_server.requests] == ["/retry-after", "/retry-after", "/redirect", "/echo"]
    assert requests_[3][1] == b"moved body"
    assert python_verdicts(secret, requests_) == [True] * 4
    assert node_verdicts(secret, requests_) == [True] * 4


def test_the_recipes_refuse_tampering_a_wrong_secret_and_replays(admin_client, http_server, make_endpoint):
    connection, secret = create_signed_connection(admin_client, http_server)
    endpoint = make_endpoint(connection, method="POST", body_type="text", body_template="pay 10")
    executor.execute(endpoint)
    headers, body = received(http_server)[0]
    stale = int(time.time()) - 600
    replayed = {**headers, **signing.signature_headers(secret, body, now=stale)}
    cases = [(headers, body), (headers, b"pay 1000"), (replayed, body), ({}, body)]

    assert python_verdicts(secret, cases) == [True, False, False, False]
    assert node_verdicts(secret, cases) == [True, False, False, False]
    assert python_verdicts("swb_sig_wrong", cases[:1]) == node_verdicts("swb_sig_wrong", cases[:1]) == [False]


def test_an_unsigned_connection_sends_no_signature(make_endpoint, http_server):
    executor.execute(make_endpoint())
    assert http_server.last.header("X-Switchboard-Request-Signature") is None
    assert http_server.last.header("X-Switchboard-Timestamp") is None


def test_the_connection_test_is_signed_too(admin_client, http_server):
    connection, secret = create_signed_connection(admin_client, http_server)
    assert admin_client.post(f"/api/v1/connections/{connection.pk}/test").json()["ok"] is True
    assert python_verdicts(secret, received(http_server)) == [True]


def test_the_admin_shows_the_secret_once_and_rotates_it(tenant, make_staff_user, http_server):
    make_staff_user("ada", tenant, role=Role.ADMIN)
    browser = Client()
    browser.login(username="ada", password="pw-for-tests-1")
    form = {
        "name": "From the admin",
        "base_url": http_server.base_url,
        "connect_timeout": 3,
        "read_timeout": 5,
        "total_deadline": 30,
        "max_response_bytes": 1000,
        "verify_tls": "on",
        "sign_requests": "on",
        "endpoints-TOTAL_FORMS": 0,
        "endpoints-INITIAL_FORMS": 0,
    }
    shown = browser.post("/admin/integrations/connection/add/", form)
    assert shown.status_code == 200, shown.content.decode()[:3000]
    connection = Connection.objects.get(name="From the admin")
    assert connection.signing_secret and connection.signing_secret in shown.content.decode()

    change = browser.get(f"/admin/integrations/connection/{connection.pk}/change/").content.decode()
    assert connection.signing_secret not in change and "Rotate signing secret" in change

    rotate_url = f"/admin/integrations/connection/{connection.pk}/signing-secret/"
    assert browser.get(rotate_url).status_code == 405
    rotated = browser.post(rotate_url)
    old = connection.signing_secret
    connection.refresh_from_db()
    assert connection.signing_secret != old and connection.signing_secret in rotated.content.decode()
