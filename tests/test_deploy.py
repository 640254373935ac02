"""The README's deploy, run the way an operator runs it (issue #10), on SQLite and on PostgreSQL.

Explicit secrets, DEBUG off, a `SWITCHBOARD_LOCAL_DIR` that does not exist, no Redis cache:
`migrate`, `collectstatic`, `check --deploy` and `bootstrap_tenant`, then gunicorn with 2 workers, a
Celery worker and beat as separate processes (tests/support/deploy.py). Everything below goes over
HTTP to that gunicorn, as a proxy terminating TLS would send it (`X-Forwarded-Proto: https`).
PostgreSQL runs when a server answers (a fresh database, dropped afterwards) and is required in CI.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid

import pytest
import requests

from tests.calls.conftest import verify_like_a_receiver
from tests.support.deploy import Deployment, postgres_database, postgres_server_url, require_or_skip
from tests.support.oauth_server import CLIENT_ID, CLIENT_SECRET
from tests.support.totp import totp

pytestmark = pytest.mark.deploy

ORIGIN = "https://shop.example"
PASSWORD = "a-long-operator-password-7"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def deployment(request, tmp_path_factory):
    workdir = tmp_path_factory.mktemp(f"deploy-{request.param}")
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            database_url = f"sqlite:///{workdir / 'db.sqlite3'}"
        else:
            database_url = stack.enter_context(postgres_database())
            if database_url is None:
                require_or_skip(f"no PostgreSQL server answers at {postgres_server_url()}")
        # Outgoing requests may reach this machine's test servers, as `make run` allows its demo API.
        deploy = Deployment(workdir, database_url, OUTBOUND_ALLOWED_HOSTS="127.0.0.1", **_broker(request.param))
        deploy.manage("migrate", "--noinput")
        deploy.manage("collectstatic", "--noinput")
        deploy.manage("check", "--deploy", "--fail-level", "ERROR")
        out = deploy.manage("bootstrap_tenant", "Acme", "--admin-user", "alice", "--password", PASSWORD)
        deploy.owner_key = out.strip().splitlines()[-1]
        stack.callback(deploy.stop)
        deploy.start_web()
        deploy.start_worker()
        deploy.start_beat()
        deploy.wait_for(lambda: _get(deploy.url + "/healthz") == 200)
        deploy.wait_for(lambda: " ready." in deploy.log("worker"))
        deploy.wait_for(lambda: "beat: Starting..." in deploy.log("beat"))
        yield deploy


def _broker(backend: str) -> dict[str, str]:
    """SQLite runs the single-machine shape (the embedded broker); PostgreSQL the scaled-out one, with
    the suite's Redis broker when it has one (CI) on a queue of its own, else the embedded broker too."""
    configured = os.environ.get("CELERY_BROKER_URL", "")
    if backend == "postgresql" and configured.startswith("redis://"):
        return {"CELERY_BROKER_URL": configured, "CELERY_TASK_DEFAULT_QUEUE": f"smoke-{uuid.uuid4().hex[:10]}"}
    return {}


def _get(url: str) -> int | None:
    try:
        return requests.get(url, timeout=5).status_code
    except requests.RequestException:  # not listening yet, or still importing the app
        return None


class Api:
    """The deployment's HTTP API behind a TLS-terminating proxy, with the owner's key by default."""

    def __init__(self, deploy: Deployment) -> None:
        self.deploy = deploy
        self.session = requests.Session()
        self.session.headers.update({"X-Forwarded-Proto": "https", "Authorization": f"Bearer {deploy.owner_key}"})

    def __call__(self, method: str, path: str, expect: int = 200, **kwargs) -> requests.Response:
        response = self.session.request(method, self.deploy.url + path, timeout=30, **kwargs)
        assert response.status_code == expect, f"{method} {path}: {response.status_code} {response.text[:500]}"
        return response


@pytest.fixture
def api(deployment) -> Api:
    return Api(deployment)


def test_the_embedded_broker_made_its_folder_and_no_secret_was_generated(deployment):
    # The embedded broker's SQLite file (and its WAL companions) and the processes' metrics folder
    # (PROMETHEUS_MULTIPROC_DIR's default) are all the app ever keeps there.
    names = set(os.listdir(deployment.local_dir)) if deployment.local_dir.exists() else set()
    if "CELERY_BROKER_URL" not in deployment.env:
        assert "celery-broker.sqlite3" in names, names
    assert all(name.startswith("celery-broker.sqlite3") or name == "metrics" for name in names), names


def test_readyz_and_metrics_cover_every_process_of_the_deployment(deployment):
    from tests.support.metrics import Samples

    assert requests.get(deployment.url + "/readyz", timeout=10).json() == {
        "status": "ok",
        "checks": {"database": "ok", "cache": "ok", "broker": "ok"},
    }

    def healthz_count() -> float:
        text = requests.get(deployment.url + "/metrics", timeout=10).text
        return Samples(text).get("switchboard_http_requests_total", route="healthz", method="GET", status="200")

    before = healthz_count()
    for _ in range(20):
        assert _get(deployment.url + "/healthz") == 200
    # Whichever of gunicorn's two workers answers the scrape, it sums both workers' files.
    assert healthz_count() - before == 20


def test_static_files_admin_and_docs_are_served_with_debug_off(api):
    assert "/static/admin/css/base.css" in api("GET", "/admin/login/").text
    assert api("GET", "/static/admin/css/base.css").headers["Content-Type"].startswith("text/css")
    assert "widget" in api("GET", "/static/widget/widget.js").text
    docs = api("GET", "/api/docs/").text
    assert "swagger-ui" in docs
    assert api("GET", "/api/schema/").text.startswith("openapi: 3")
    plain_http = requests.get(api.deploy.url + "/api/v1/api-keys", allow_redirects=False, timeout=10)
    assert plain_http.status_code == 301 and plain_http.headers["Location"].startswith("https://")


def test_the_bootstrapped_owner_signs_in_to_the_admin(deployment):
    url, host = deployment.url, deployment.url.removeprefix("http://")
    browser = requests.Session()
    browser.headers.update({"X-Forwarded-Proto": "https", "Origin": f"https://{host}"})
    form = browser.get(f"{url}/admin/login/", timeout=30)
    assert "Secure" in form.headers["Set-Cookie"]
    # The cookies are Secure (DEBUG off): a browser on https sends them back; this client is on the
    # proxy's plain-HTTP side, so it hands them back itself.
    token = form.cookies["csrftoken"]
    browser.cookies.set("csrftoken", token)

    login = browser.post(
        f"{url}/admin/login/?next=/admin/",
        data={"username": "alice", "password": PASSWORD, "csrfmiddlewaretoken": token, "next": "/admin/"},
        allow_redirects=False,
        timeout=30,
    )
    assert login.status_code == 302, login.text[:500]
    browser.cookies.set("sessionid", login.cookies["sessionid"])
    # DEBUG off requires two-factor sign-in (ADMIN_REQUIRE_2FA): the first sign-in sets it up.
    setup = browser.get(f"{url}{login.headers['Location']}", timeout=30)
    assert setup.url.endswith("/admin/two-factor/") and "<svg" in setup.text
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', setup.text).group(1)
    confirmed = browser.post(
        f"{url}/admin/two-factor/",
        data={"token": totp(secret), "csrfmiddlewaretoken": token},
        allow_redirects=False,
        timeout=30,
    )
    assert confirmed.status_code == 302 and confirmed.headers["Location"] == "/admin/", confirmed.text[:500]
    browser.cookies.set("sessionid", confirmed.cookies.get("sessionid") or login.cookies["sessionid"])
    index = browser.get(f"{url}/admin/", timeout=30)

    assert index.status_code == 200 and "alice" in index.text and 'id="dashboard"' in index.text


def test_a_widget_session_converses(api):
    rule = {
        "name": "Greeting",
        "priority": 10,
        "trigger": {"type": "regex", "pattern": "^hello"},
        "actions": [{"type": "REPLY_TEXT", "template": "Hello from the {page} page."}],
    }
    api("POST", "/api/v1/rules", 201, json=rule)
    key = api("POST", "/api/v1/widget-keys", 201, json={"name": "Shop", "allowed_origins": [ORIGIN]}).json()["key"]
    visitor = {"Origin": ORIGIN, "Authorization": ""}

    session = api("POST", "/widget/v1/sessions", 201, headers=visitor,
                  json={"widget_key": key, "variables": {"page": "pricing"}}).json()  # fmt: skip
    reply = api(
        "POST",
        f"/widget/v1/sessions/{session['session_id']}/messages",
        headers={**visitor, "Authorization": f"Bearer {session['token']}"},
        json={"text": "hello there"},
    )

    assert reply.json()["reply"] == "Hello from the pricing page."
    assert reply.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_an_oauth2_connection_test_obtains_a_token_that_every_web_worker_reuses(api, oauth_provider):
    oauth_provider.expires_in = 600
    credential = {
        "name": "Orders OAuth",
        "type": "oauth2_client_credentials",
        "config": {"token_url": oauth_provider.token_url, "client_id": CLIENT_ID, "scope": "read"},
        "secrets": {"client_secret": CLIENT_SECRET},
    }
    credential_id = api("POST", "/api/v1/credentials", 201, json=credential).json()["id"]
    connection = {"name": "Orders", "base_url": oauth_provider.http.base_url, "credential": credential_id}
    connection_id = api("POST", "/api/v1/connections", 201, json=connection).json()["id"]
    endpoint = {"connection": connection_id, "name": "Orders", "tool_name": "list_orders", "path": "/api/orders"}
    endpoint_id = api("POST", "/api/v1/endpoints", 201, json=endpoint).json()["id"]

    tested = api("POST", f"/api/v1/connections/{connection_id}/test").json()
    # gunicorn's two workers answer these; each finds the token the test stored in the shared cache.
    calls = [api("POST", f"/api/v1/endpoints/{endpoint_id}/test", json={}).json()["result"] for _ in range(4)]

    assert tested["ok"] is True and tested["auth"]["message"] == "token obtained", tested
    assert [c["status"] for c in calls] == ["success"] * 4, calls
    assert oauth_provider.token_count("client_credentials") == 1
    assert oauth_provider.http.count("/api/orders") == 4


def test_a_simulated_call_completes_and_its_signed_callback_arrives(api, http_server):
    http_server.route("POST", "/hook", lambda request: (200, {}, "ok"))
    agent = {
        "name": "Reminder",
        "agent_code": "reminder",
        "prompt": "Remind politely.",
        "input_schema": {"fields": ["amount_due"], "sample_context": {"amount_due": "5 USD"}},
    }
    agent_id = api("POST", "/api/v1/agents", 201, json=agent).json()["id"]
    # The conversation outlasts the longest broker countdown (5 s), so only beat's dialer sweep can end
    # it: the call completing proves beat runs its schedule from the database.
    trunk = {
        "name": "Main",
        "trunk_phone": "+14155550123",
        "max_cps": 5,
        "max_channels": 5,
        "dialer_config": {"ring_seconds": 0.2, "talk_seconds": 5.5, "outcome": "completed"},
    }
    trunk_id = api("POST", "/api/v1/sip-trunks", 201, json=trunk).json()["id"]
    secret = api("POST", "/api/v1/tenant/webhook-secret").json()["secret"]
    body = {
        "phone_number": "+14155552671",
        "agent_id": agent_id,
        "sip_trunk_id": trunk_id,
        "metadata": {"amount_due": "10 USD"},
        "callback_url": http_server.url("/hook"),
    }

    call = api("POST", "/integration/v1/calls", 201, json=body).json()
    api.deploy.wait_for(lambda: http_server.count("/hook") >= 1, timeout=90)
    if api.deploy.env["DATABASE_URL"].startswith("postgres"):
        # The prefork worker's call dispatcher sent the first step (gunicorn published nothing for it).
        assert "call dispatcher listening" in api.deploy.log("worker")

    payload = verify_like_a_receiver(secret, http_server.requests[0])
    assert payload["event"] == "call.completed" and payload["call_id"] == call["call_id"]
    status = api("GET", f"/integration/v1/calls/{call['call_id']}/status").json()
    assert status["call_status"] == "Completed" and status["is_terminal"] is True
