"""The executor against a real local server: rendering by destination, statuses, retries, mapping, caching."""

from __future__ import annotations

import base64
import json
import time

import pytest

from integrations.executor import execute, prepare
from integrations.models import ApiCallLog
from integrations.parameters import ParameterError

TRICKY = 'He said "hi" {x} }{ {{x}} \\ \n\t end'


def test_a_tricky_value_stays_valid_json_and_is_not_rendered_again(make_endpoint, http_server):
    endpoint = make_endpoint(
        method="POST", body_type="json", body_template='{"note": "{{note}}", "raw": {{note}}, "n": {{count}}}'
    )

    result = execute(endpoint, params={"note": TRICKY, "count": 3, "x": "INJECTED"})

    assert result.status == "success"
    received = http_server.last.json()
    assert received == {"note": TRICKY, "raw": TRICKY, "n": 3}
    assert http_server.last.header("Content-Type") == "application/json"


def test_lone_expression_leaves_keep_their_json_type(make_endpoint, http_server):
    endpoint = make_endpoint(
        method="PUT",
        body_type="json",
        body_template='{"price": {current_price}, "ok": {{flag}}, "item": {{item}}, "label": "n={current_price}"}',
    )

    execute(endpoint, variables={"current_price": 12.5, "flag": False, "item": {"id": 7, "tags": ["a"]}})

    assert http_server.last.json() == {"price": 12.5, "ok": False, "item": {"id": 7, "tags": ["a"]}, "label": "n=12.5"}


def test_path_segments_and_query_values_are_percent_encoded(make_endpoint, http_server):
    endpoint = make_endpoint(path="/echo/{customerId}", query={"q": "{{q}}", "empty": "{{nothing}}"})
    http_server.route("GET", "/echo/*", lambda request: (200, {}, {"raw_path": request.raw_path}))

    result = execute(endpoint, params={"customerId": "a/b?c#d", "q": "x&y=z ü"})

    assert http_server.last.path == "/echo/a%2Fb%3Fc%23d"
    assert http_server.last.query == {"q": "x&y=z ü"}
    assert result.warnings == ["missing variable: nothing"]


def test_header_injection_is_refused_and_nothing_is_sent(make_endpoint, http_server):
    endpoint = make_endpoint(headers={"X-Customer": "{{name}}"})

    result = execute(endpoint, params={"name": "Ada\r\nX-Admin: yes"})

    assert result.status == "failure"
    assert "invalid template" in result.to_dict()["error"]
    assert http_server.count() == 0


def test_session_variables_are_overridden_by_params_and_context_has_safe_tenant_fields(
    make_endpoint, http_server, tenant
):
    endpoint = make_endpoint(
        method="POST",
        body_type="json",
        body_template='{"city": "{city}", "explicit": "{params.city}", "session": "{conversation.id}", '
        '"tenant": {{tenant}}, "row": "{row.sku}", "lang": "{lang}"}',
    )

    execute(
        endpoint,
        params={"city": "Lima"},
        variables={"city": "Cusco", "lang": "es"},
        conversation={"id": "c-1"},
        row={"sku": "S9"},
    )

    assert http_server.last.json() == {
        "city": "Lima",
        "explicit": "Lima",
        "session": "c-1",
        "tenant": {"id": str(tenant.id), "name": "Acme", "slug": tenant.slug},
        "row": "S9",
        "lang": "es",
    }


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
def test_every_method(make_endpoint, http_server, method):
    result = execute(make_endpoint(method=method))

    assert result.status == "success"
    assert http_server.last.method == method


def test_text_and_raw_bodies(make_endpoint, http_server):
    execute(make_endpoint(method="POST", body_type="text", body_template="Hello {{name}}!"), params={"name": "Ada"})
    assert http_server.last.text == "Hello Ada!"
    assert http_server.last.header("Content-Type") == "text/plain; charset=utf-8"

    raw = make_endpoint(
        method="POST", body_type="raw", body_template="<a>{{name}}</a>", headers={"Content-Type": "application/xml"}
    )
    execute(raw, params={"name": "Ada"})
    assert http_server.last.text == "<a>Ada</a>"
    assert http_server.last.header("Content-Type") == "application/xml"


def test_form_body(make_endpoint, http_server):
    endpoint = make_endpoint(
        method="POST", body_type="form", body_template=json.dumps({"name": "{{name}}", "n": "{n}"})
    )

    execute(endpoint, params={"name": "A&B=C", "n": 2})

    assert http_server.last.header("Content-Type") == "application/x-www-form-urlencoded"
    assert http_server.last.text == "name=A%26B%3DC&n=2"


def test_multipart_body_with_text_and_base64_files(make_endpoint, http_server):
    spec = {
        "fields": {"title": "{{title}}"},
        "files": {
            "note": {"filename": "note.txt", "content_type": "text/plain", "content": "hi {{title}}"},
            "logo": {"filename": "logo.bin", "content": "{{logo}}", "encoding": "base64"},
        },
    }
    endpoint = make_endpoint(method="POST", body_type="multipart", body_template=json.dumps(spec))

    result = execute(endpoint, params={"title": "Report", "logo": base64.b64encode(b"\x00\x01\xff").decode()})

    assert result.status == "success"
    body = http_server.last.body
    assert http_server.last.header("Content-Type").startswith("multipart/form-data; boundary=")
    assert b'name="title"\r\n\r\nReport' in body
    assert b'filename="note.txt"' in body and b"hi Report" in body
    assert b'filename="logo.bin"' in body and b"\x00\x01\xff" in body


def test_declared_parameters_are_validated_coerced_and_defaulted(make_endpoint, http_server):
    endpoint = make_endpoint(
        parameters=[
            {"name": "city", "location": "query", "type": "string", "required": True},
            {"name": "days", "location": "query", "type": "integer", "default": 3},
            {"name": "units", "location": "query", "type": "string", "enum": ["metric", "imperial"]},
            {"name": "X-Trace", "location": "header", "type": "boolean"},
        ]
    )

    result = execute(endpoint, params={"city": "Lima", "units": "metric", "X-Trace": "yes"})

    assert result.status == "success"
    assert http_server.last.query == {"city": "Lima", "days": "3", "units": "metric"}
    assert http_server.last.header("X-Trace") == "true"


def test_missing_required_parameters_are_a_failure_naming_them(make_endpoint, http_server):
    endpoint = make_endpoint(
        parameters=[
            {"name": "city", "type": "string", "required": True},
            {"name": "date", "type": "string", "required": True},
            {"name": "n", "type": "integer"},
        ]
    )

    result = execute(endpoint, params={"n": "x"})

    assert result.status == "failure"
    assert result.to_dict()["error"] == "missing required parameters: city, date; parameter n must be an integer"
    assert http_server.count() == 0
    with pytest.raises(ParameterError):
        prepare(endpoint, params={"n": 1})


def test_enum_is_enforced(make_endpoint, http_server):
    endpoint = make_endpoint(parameters=[{"name": "units", "type": "string", "enum": ["metric", "imperial"]}])

    result = execute(endpoint, params={"units": "kelvin"})

    assert result.to_dict()["error"] == "parameter units must be one of: metric, imperial"


def test_success_result_shape(make_endpoint, http_server):
    http_server.set_json({"data": {"price": {"amount": 12.5}}, "items": [{"id": 7}], "ok": True})
    endpoint = make_endpoint(
        path="/json",
        response_mapping={
            "price": "data.price.amount",
            "first": "response.items[0].id",
            "ok": "ok",
            "whole": "data",
            "nothing": "data.missing.path",
            "code": "status_code",
            "kind": 'headers."content-type"',
        },
        response_template="Price {{price}} ({{response.items.0.id}}, {{status_code}})",
    )

    result = execute(endpoint)
    shape = result.to_dict()

    assert set(shape) == {"status", "status_code", "body", "headers", "timestamp", "duration_ms", "attempts", "mapped"}
    assert shape["status"] == "success"
    assert shape["status_code"] == 200
    assert shape["body"] == {"data": {"price": {"amount": 12.5}}, "items": [{"id": 7}], "ok": True}
    assert shape["headers"]["content-type"] == "application/json"
    assert shape["attempts"] == 1
    assert shape["mapped"] == {
        "price": 12.5,
        "first": 7,
        "ok": True,
        "whole": {"price": {"amount": 12.5}},
        "nothing": None,
        "code": 200,
        "kind": "application/json",
    }
    assert "unmapped path: data.missing.path" in result.warnings
    assert result.say == "Price 12.5 (7, 200)"
    assert shape["timestamp"].endswith("Z")


def test_include_raw_adds_raw(make_endpoint, http_server):
    result = execute(make_endpoint(path="/status/200", include_raw=True))

    assert result.to_dict()["raw"] == "status 200"
    assert result.to_dict()["body"] == "status 200"


def test_error_status(make_endpoint, http_server):
    shape = execute(make_endpoint(path="/status/404")).to_dict()

    assert shape["status"] == "error"
    assert shape["status_code"] == 404
    assert shape["error"] == "HTTP 404"
    assert shape["attempts"] == 1


def test_exception_on_timeout(make_endpoint, make_connection, http_server):
    connection = make_connection(read_timeout=0.2, retry={"max_retries": 0})
    shape = execute(make_endpoint(connection, path="/slow", query={"ms": "800"})).to_dict()

    assert shape["status"] == "exception"
    assert shape["status_code"] is None
    assert shape["error"] == "127.0.0.1 did not answer in time"


def test_exception_when_the_response_is_too_large(make_endpoint, make_connection, http_server):
    connection = make_connection(max_response_bytes=1000)

    shape = execute(make_endpoint(connection, path="/huge", query={"bytes": "5000"})).to_dict()

    assert shape["status"] == "exception"


def test_exception_on_refused_connection(make_endpoint, make_connection):
    connection = make_connection(base_url="http://127.0.0.1:9", retry={"max_retries": 1})

    result = execute(make_endpoint(connection))

    assert result.status == "exception"
    assert result.attempts == 2


def test_ssrf_refusal_is_a_failure(make_endpoint, http_server, settings):
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = False

    shape = execute(make_endpoint()).to_dict()

    assert shape["status"] == "failure"
    assert shape["error"] == "destination not allowed: 127.0.0.1 is a loopback address"
    assert http_server.count() == 0


def test_retry_statuses_are_retried_with_backoff(make_endpoint, make_connection, http_server):
    connection = make_connection(retry={"max_retries": 3, "base_delay": 0.01, "max_delay": 0.02})
    endpoint = make_endpoint(connection, path="/retry-after", query={"times": "2", "status": "503", "seconds": "0"})

    result = execute(endpoint)

    assert result.status == "success"
    assert result.attempts == 3
    assert http_server.count("/retry-after") == 3
    assert result.body == {"ok": True, "attempt": 3}


def test_retries_stop_at_max_retries(make_endpoint, make_connection, http_server):
    connection = make_connection(retry={"max_retries": 2, "base_delay": 0.01})

    result = execute(make_endpoint(connection, path="/status/502"))

    assert result.status == "error"
    assert result.attempts == 3
    assert http_server.count("/status/502") == 3


def test_non_retry_statuses_are_not_retried(make_endpoint, http_server):
    result = execute(make_endpoint(path="/status/500"))

    assert result.attempts == 1
    assert http_server.count() == 1


def test_retry_after_is_honoured(make_endpoint, make_connection, http_server):
    connection = make_connection(retry={"max_retries": 1, "base_delay": 0.001, "max_delay": 5})
    endpoint = make_endpoint(connection, path="/retry-after", query={"times": "1", "seconds": "0.3"})

    started = time.monotonic()
    result = execute(endpoint)
    elapsed = time.monotonic() - started

    assert result.status == "success" and result.attempts == 2
    first, second = http_server.requests
    assert second.at - first.at >= 0.29
    assert elapsed < 2


def test_retry_after_is_capped_by_max_delay(make_endpoint, make_connection, http_server):
    connection = make_connection(retry={"max_retries": 1, "base_delay": 0.001, "max_delay": 0.05})
    endpoint = make_endpoint(connection, path="/retry-after", query={"times": "1", "seconds": "30"})

    started = time.monotonic()
    result = execute(endpoint)

    assert result.attempts == 2 and result.status == "success"
    assert time.monotonic() - started < 1


def test_retry_after_beyond_the_deadline_is_not_waited_for(make_endpoint, make_connection, http_server):
    connection = make_connection(total_deadline=0.5, retry={"max_retries": 3, "max_delay": 10})
    endpoint = make_endpoint(connection, path="/retry-after", query={"times": "1", "seconds": "5"})

    started = time.monotonic()
    result = execute(endpoint)

    assert result.status == "error" and result.status_code == 429 and result.attempts == 1
    assert time.monotonic() - started < 0.5


def test_get_responses_are_cached_for_cache_ttl(make_endpoint, http_server):
    endpoint = make_endpoint(path="/json", cache_ttl=60, query={"city": "{city}"})

    first = execute(endpoint, params={"city": "Lima"})
    second = execute(endpoint, params={"city": "Lima"})
    other = execute(endpoint, params={"city": "Cusco"})

    assert http_server.count("/json") == 2
    assert first.body == second.body == {"ok": True}
    assert second.cached and not first.cached and not other.cached
    assert ApiCallLog.objects.filter(cached=True).count() == 1


def test_errors_are_not_cached(make_endpoint, http_server):
    endpoint = make_endpoint(path="/status/500", cache_ttl=60)

    execute(endpoint)
    execute(endpoint)

    assert http_server.count() == 2


def test_post_is_never_cached(make_endpoint, http_server):
    endpoint = make_endpoint(method="POST", cache_ttl=60)

    execute(endpoint)
    execute(endpoint)

    assert http_server.count() == 2


def test_prepare_sends_nothing_and_redacts(make_credential, make_connection, make_endpoint, http_server):
    credential = make_credential("bearer", secrets={"token": "super-secret-token"})
    endpoint = make_endpoint(make_connection(credential=credential), query={"q": "{q}"})

    prepared = prepare(endpoint, params={"q": "x"})

    assert http_server.count() == 0
    shown = prepared.redacted()
    assert shown["method"] == "GET"
    assert shown["url"] == f"{http_server.base_url}/echo?q=x"
    assert shown["headers"]["Authorization"] == "••••"
    assert "super-secret-token" not in json.dumps(shown)


def test_follow_redirects_only_when_enabled(make_endpoint, http_server):
    plain = execute(make_endpoint(path="/redirect", query={"to": "/json"}))
    followed = execute(make_endpoint(path="/redirect", query={"to": "/json"}, follow_redirects=True))

    assert plain.status_code == 302
    assert followed.status_code == 200 and followed.body == {"ok": True}


def test_an_endpoint_loaded_for_execution_costs_one_query_the_log_insert(
    make_credential, make_connection, make_endpoint, http_server, django_assert_num_queries
):
    from integrations.models import Endpoint

    created = make_endpoint(make_connection(credential=make_credential("bearer", secrets={"token": "t"})))
    endpoint = Endpoint.objects.for_execution().get(pk=created.pk)

    with django_assert_num_queries(1):
        result = execute(endpoint)

    assert result.status == "success"


def test_the_body_is_decoded_with_the_declared_charset(make_endpoint, http_server):
    http_server.route(
        "GET",
        "/latin",
        lambda request: (200, {"Content-Type": "text/plain; charset=latin-1"}, "café".encode("latin-1")),
    )

    result = execute(make_endpoint(path="/latin"))

    assert result.body == "café"


def test_a_header_parameter_with_a_line_break_or_non_latin1_text_is_refused(make_endpoint, http_server):
    endpoint = make_endpoint(parameters=[{"name": "X-Note", "location": "header"}])

    broken = execute(endpoint, params={"X-Note": "a\nb"})
    exotic = execute(endpoint, params={"X-Note": "日本"})

    assert broken.status == exotic.status == "failure"
    assert exotic.error == "invalid template: header X-Note can only contain Latin-1 characters"
    assert http_server.count() == 0


def test_header_values_lose_surrounding_spaces(make_endpoint, http_server):
    result = execute(make_endpoint(headers={"X-A": "  padded  "}))

    assert result.status == "success"
    assert http_server.last.header("X-A") == "padded"


def test_an_unexpected_error_is_an_exception_result_and_is_logged_redacted(
    make_credential, make_connection, make_endpoint, http_server, monkeypatch, caplog
):
    from integrations import http

    def broken(*args, **kwargs):
        raise RuntimeError(f"boom with {kwargs['headers']['Authorization']}")

    monkeypatch.setattr(http, "send", broken)
    endpoint = make_endpoint(make_connection(credential=make_credential("bearer", secrets={"token": "tok-123456789"})))

    result = execute(endpoint)

    assert result.status == "exception"
    assert result.error == "unexpected error (RuntimeError)"
    assert "boom with Bearer ••••" in caplog.text and "tok-123456789" not in caplog.text
