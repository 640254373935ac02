"""Standing tests: secrets stay secret. Secret references read only what the operator opened, and no
spelling of a secret (raw, URL-encoded, base64, a Basic pair) leaves the executor, the call log, an
OAuth error or an AI reply."""

from __future__ import annotations

import base64
import json
import logging

import pytest

from integrations.auth import CREDENTIAL_TYPES, get_type
from integrations.executor import execute
from integrations.models import ApiCallLog, Credential
from tenants.secrets import MASK

SECRET_NAMES = ["SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "DATABASE_URL", "CELERY_BROKER_URL", "LLM_API_KEY"]


@pytest.fixture
def closed(settings):
    """The production default: no reference opened to tenants."""
    settings.SECRET_REFS_ENV_PREFIXES = []
    settings.SECRET_REFS_ENV_NAMES = []
    settings.SECRET_REFS_FILE_DIRS = []
    return settings


def _secret_fields():
    return [(name, f) for name in CREDENTIAL_TYPES for f in get_type(name).secret_fields if f.kind != "json"]


@pytest.mark.parametrize(("kind", "field"), _secret_fields(), ids=lambda v: getattr(v, "name", v))
@pytest.mark.parametrize("reference", ["env:SECRET_KEY", "env:SWB_OPEN", "file:/proc/self/environ"])
def test_every_secret_field_refuses_a_reference_nobody_opened(closed, owner_client, kind, field, reference):
    # Every secret field of every credential type: a new type is covered the day it is registered.
    value = {"name": reference} if field.kind == "map" else reference
    body = {"name": "Probe", "type": kind, "config": {}, "secrets": {field.name: value}}

    response = owner_client.post("/api/v1/credentials", body, format="json")

    assert response.status_code == 400
    assert "is not allowed" in json.dumps(response.json())
    assert not Credential.objects.filter(name="Probe").exists()


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_the_apps_own_variables_are_refused_even_when_a_prefix_opens_them(settings, owner_client, name):
    settings.SECRET_REFS_ENV_PREFIXES = [name[:3], ""]
    body = {"name": "Probe", "type": "bearer", "secrets": {"token": f"env:{name}"}}

    response = owner_client.post("/api/v1/credentials", body, format="json")

    assert response.status_code == 400
    assert response.json()["error"].startswith(f"secrets: token: env:{name} is not allowed")


def test_a_default_header_reference_is_refused_at_save(closed, owner_client):
    body = {"name": "Leaky", "base_url": "https://api.example", "default_headers": {"X-Key": "env:SECRET_KEY"}}

    response = owner_client.post("/api/v1/connections", body, format="json")

    assert response.status_code == 400
    assert "env:SECRET_KEY is not allowed" in json.dumps(response.json())


def test_an_opened_variable_and_file_are_sent(settings, monkeypatch, tmp_path, tenant, endpoint_to, http_server):
    settings.SECRET_REFS_ENV_NAMES = ["PARTNER_TOKEN"]
    settings.SECRET_REFS_FILE_DIRS = [str(tmp_path)]
    monkeypatch.setenv("PARTNER_TOKEN", "token-from-the-environment")
    (tmp_path / "key").write_text("key-from-a-file\n")
    token = Credential.objects.create(tenant=tenant, name="t", type="bearer", secrets={"token": "env:PARTNER_TOKEN"})

    execute(endpoint_to(token, connection={"default_headers": {"X-Key": f"file:{tmp_path / 'key'}"}}))

    sent = http_server.last
    assert sent.header("Authorization") == "Bearer token-from-the-environment"
    assert sent.header("X-Key") == "key-from-a-file"


def test_a_stored_reference_is_checked_again_when_called(closed, monkeypatch, endpoint_to, http_server, tenant):
    monkeypatch.setenv("SECRET_KEY", "the-master-key-of-the-platform")
    credential = Credential.objects.create(
        tenant=tenant, name="old", type="bearer", secrets={"token": "env:SECRET_KEY"}
    )

    result = execute(endpoint_to(credential))

    assert result.status == "failure"
    assert "is not allowed" in result.error
    assert http_server.count() == 0


@pytest.mark.parametrize("path", ["../../etc/passwd", "sub/../../../proc/self/environ", "link"])
def test_a_file_outside_the_opened_directory_is_refused(settings, tmp_path, path):
    from integrations.auth import secret_refs

    opened = tmp_path / "opened"
    opened.mkdir()
    (opened / "link").symlink_to("/proc/self/environ")
    settings.SECRET_REFS_FILE_DIRS = [str(opened)]

    with pytest.raises(secret_refs.SecretRefused):
        secret_refs.resolve(f"file:{opened / path}")


def test_unreadable_files_all_read_the_same_and_never_500(settings, tmp_path, endpoint_to, tenant, http_server):
    settings.SECRET_REFS_FILE_DIRS = [str(tmp_path)]
    (tmp_path / "binary").write_bytes(b"\xff\xfe\x00secret")
    (tmp_path / "folder").mkdir()
    errors = []
    for name in ["binary", "missing", "folder"]:
        credential = Credential.objects.create(
            tenant=tenant, name=name, type="bearer", secrets={"token": f"file:{tmp_path / name}"}
        )
        result = execute(endpoint_to(credential))
        assert result.status == "failure"
        errors.append(result.error.replace(name, "<name>"))

    assert len(set(errors)) == 1 and "cannot be read" in errors[0]
    assert http_server.count() == 0


# --- scrubbing --------------------------------------------------------------------------------------

TOKEN = "tok-" + "s3cr3t" * 6


def _bearer(tenant) -> Credential:
    return Credential.objects.create(tenant=tenant, name="b", type="bearer", secrets={"token": TOKEN})


def test_a_token_echoed_across_the_preview_cut_is_scrubbed(tenant, endpoint_to, http_server):
    http_server.route("GET", "/long", lambda r: (200, {}, "x" * 1990 + r.header("Authorization")))

    execute(endpoint_to(_bearer(tenant), path="/long"), trigger="api")

    # The token starts 3 characters before the 2,000-character cut: scrubbed first, nothing of it stays.
    preview = ApiCallLog.objects.get().response_preview
    assert preview == ("x" * 1990 + "Bearer " + MASK)[:2000]


@pytest.mark.parametrize(
    "spelling",
    [
        lambda t: t,
        lambda t: base64.b64encode(t.encode()).decode(),
        lambda t: base64.urlsafe_b64encode(t.encode()).decode().rstrip("="),
        lambda t: t.replace("-", "%2D"),
    ],
    ids=["raw", "base64", "base64url", "urlencoded"],
)
def test_every_spelling_of_a_secret_is_scrubbed_from_results_and_logs(tenant, endpoint_to, http_server, spelling):
    from urllib.parse import quote

    echoed = spelling(TOKEN) if spelling(TOKEN) != TOKEN.replace("-", "%2D") else quote(TOKEN, safe="")
    http_server.route("GET", "/spell", lambda r: (200, {}, {"said": f"your key is {echoed}"}))

    result = execute(endpoint_to(_bearer(tenant), path="/spell", include_raw=True), trigger="api")

    shown = json.dumps(result.to_dict()) + ApiCallLog.objects.get().response_preview
    assert echoed not in shown and MASK in shown


def test_an_oauth_error_echoing_the_basic_header_is_scrubbed_everywhere(tenant, endpoint_to, http_server, caplog):
    def refuse(request):
        return 401, {}, {"error": "invalid_client", "error_description": f"bad {request.header('Authorization')}"}

    http_server.route("POST", "/token", refuse)
    credential = Credential.objects.create(
        tenant=tenant,
        name="oauth",
        type="oauth2_client_credentials",
        config={"token_url": http_server.url("/token"), "client_id": "client-id-1"},
        secrets={"client_secret": "client-secret-value-9"},
    )
    pair = base64.b64encode(b"client-id-1:client-secret-value-9").decode()

    with caplog.at_level(logging.INFO):
        result = execute(endpoint_to(credential), trigger="api")

    assert result.status == "failure" and "invalid_client" in result.error
    shown = [result.error, json.dumps(result.to_dict()), ApiCallLog.objects.get().error, caplog.text]
    assert not any(pair in text or pair.rstrip("=") in text for text in shown)


def test_a_harmless_looking_default_header_is_a_secret_too(tenant, endpoint_to):
    endpoint = endpoint_to(connection={"default_headers": {"X-Channel": "partner-channel-key"}})

    result = execute(endpoint, trigger="api")

    assert "partner-channel-key" not in json.dumps(result.to_dict())
    assert "partner-channel-key" not in ApiCallLog.objects.get().response_preview


def test_the_ai_providers_key_is_scrubbed_from_its_replies(settings, make_http_server, tenant):
    from rules import ai

    key = "sk-provider-key-0123456789"
    server = make_http_server()
    answer = {"choices": [{"message": {"role": "assistant", "content": f"my key is {key}"}}]}
    server.route("POST", "/v1/chat/completions", lambda r: (200, {}, answer))
    settings.LLM_BASE_URL, settings.LLM_API_KEY, settings.LLM_MAX_RETRIES = server.url("/v1"), key, 0

    reply = ai.provider_for(tenant).reply(None, "say hi")

    assert key not in reply and MASK in reply
