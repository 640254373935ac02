"""Every credential type, as the server received it; secret references resolved at call time."""

from __future__ import annotations

import base64

from integrations.executor import execute


def _sent(http_server):
    request = http_server.last
    assert request is not None
    return request


def test_none_sends_no_credentials(make_credential, make_connection, make_endpoint, http_server):
    endpoint = make_endpoint(make_connection(credential=make_credential("none")))

    result = execute(endpoint)

    assert result.status == "success"
    assert _sent(http_server).header("Authorization") is None
    assert _sent(http_server).query == {}


def test_api_key_in_the_default_header(make_credential, make_connection, make_endpoint, http_server):
    credential = make_credential("api_key", secrets={"key": "k-1234567890abcdef"})
    endpoint = make_endpoint(make_connection(credential=credential))

    execute(endpoint)

    assert _sent(http_server).header("X-Api-Key") == "k-1234567890abcdef"


def test_api_key_in_a_named_header(make_credential, make_connection, make_endpoint, http_server):
    credential = make_credential("api_key", config={"header_name": "X-Custom-Key"}, secrets={"key": "abc-secret"})
    endpoint = make_endpoint(make_connection(credential=credential))

    execute(endpoint)

    assert _sent(http_server).header("X-Custom-Key") == "abc-secret"
    assert _sent(http_server).header("X-Api-Key") is None


def test_api_key_in_the_query(make_credential, make_connection, make_endpoint, http_server):
    credential = make_credential(
        "api_key", config={"placement": "query", "param_name": "apikey"}, secrets={"key": "q&key=1"}
    )
    endpoint = make_endpoint(make_connection(credential=credential), query={"city": "Lima"})

    execute(endpoint)

    assert _sent(http_server).query == {"city": "Lima", "apikey": "q&key=1"}
    assert _sent(http_server).header("X-Api-Key") is None


def test_bearer(make_credential, make_connection, make_endpoint, http_server):
    endpoint = make_endpoint(make_connection(credential=make_credential("bearer", secrets={"token": "tok-xyz"})))

    execute(endpoint)

    assert _sent(http_server).header("Authorization") == "Bearer tok-xyz"


def test_basic(make_credential, make_connection, make_endpoint, http_server):
    credential = make_credential("basic", config={"username": "ada"}, secrets={"password": "p:ss wörd"})
    endpoint = make_endpoint(make_connection(credential=credential))

    execute(endpoint)

    header = _sent(http_server).header("Authorization")
    assert header.startswith("Basic ")
    assert base64.b64decode(header[6:]).decode() == "ada:p:ss wörd"


def test_query_params(make_credential, make_connection, make_endpoint, http_server):
    credential = make_credential("query_params", secrets={"params": {"app_id": "id-1", "app_key": "key 2"}})
    endpoint = make_endpoint(make_connection(credential=credential))

    execute(endpoint)

    assert _sent(http_server).query == {"app_id": "id-1", "app_key": "key 2"}


def test_env_reference_is_resolved_at_call_time(
    make_credential, make_connection, make_endpoint, http_server, monkeypatch
):
    credential = make_credential("bearer", secrets={"token": "env:SWB_TEST_TOKEN"})
    endpoint = make_endpoint(make_connection(credential=credential))
    monkeypatch.setenv("SWB_TEST_TOKEN", "from-the-environment")

    execute(endpoint)
    monkeypatch.setenv("SWB_TEST_TOKEN", "rotated-value")
    execute(endpoint)

    assert [r.header("Authorization") for r in http_server.requests] == [
        "Bearer from-the-environment",
        "Bearer rotated-value",
    ]


def test_file_reference(make_credential, make_connection, make_endpoint, http_server, tmp_path):
    secret_file = tmp_path / "token"
    secret_file.write_text("from-a-file\n")
    credential = make_credential("api_key", secrets={"key": f"file:{secret_file}"})
    endpoint = make_endpoint(make_connection(credential=credential))

    execute(endpoint)

    assert _sent(http_server).header("X-Api-Key") == "from-a-file"


def test_unresolvable_reference_is_a_failure_and_nothing_is_sent(
    make_credential, make_connection, make_endpoint, http_server, monkeypatch
):
    monkeypatch.delenv("SWB_MISSING_TOKEN", raising=False)
    credential = make_credential("bearer", secrets={"token": "env:SWB_MISSING_TOKEN"})
    endpoint = make_endpoint(make_connection(credential=credential))

    result = execute(endpoint)

    assert result.status == "failure"
    assert result.to_dict()["error"] == (
        "credential could not be obtained: token: environment variable SWB_MISSING_TOKEN is not set"
    )
    assert http_server.count() == 0


def test_on_unauthorized_hook_retries_once(make_credential, make_connection, make_endpoint, http_server, monkeypatch):
    from integrations.auth.bearer import BearerAuth

    calls = []

    def refresh(self, response):
        calls.append(response.status_code)
        return True

    monkeypatch.setattr(BearerAuth, "on_unauthorized", refresh)
    http_server.route("GET", "/private", lambda request: (401, {}, {"error": "expired"}))
    endpoint = make_endpoint(
        make_connection(credential=make_credential("bearer", secrets={"token": "t"})), path="/private"
    )

    result = execute(endpoint)

    assert calls == [401]
    assert http_server.count("/private") == 2
    assert result.status == "error"
    assert result.attempts == 2


def test_header_secrets_may_be_references_sent_verbatim(make_connection, make_endpoint, http_server, monkeypatch):
    monkeypatch.setenv("SWB_HEADER_KEY", "k-{{not a template}}")
    endpoint = make_endpoint(make_connection(default_headers={"X-Key": "env:SWB_HEADER_KEY"}))

    result = execute(endpoint)
    monkeypatch.delenv("SWB_HEADER_KEY")
    missing = execute(endpoint)

    assert result.status == "success"
    assert http_server.last.header("X-Key") == "k-{{not a template}}"
    assert missing.status == "failure"
    assert missing.error == "header X-Key: environment variable SWB_HEADER_KEY is not set"
    assert http_server.count() == 1
