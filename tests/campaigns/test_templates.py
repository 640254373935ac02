"""Template helpers a campaign needs (now_iso tz=, format_date, eq, default) and the endpoint test
console's `row` / `extracted` with its warning about a session variable hidden by a reserved name."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from integrations import templating
from integrations.templating import helpers

FIXED = datetime(2026, 6, 14, 10, 32, 5, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch):
    monkeypatch.setattr(helpers, "utcnow", lambda: FIXED)


@pytest.mark.parametrize(
    ("template", "context", "expected"),
    [
        ('{{now_iso tz="Asia/Kolkata"}}', {}, "2026-06-14T16:02:05+05:30"),
        ("{{now_iso}}", {}, "2026-06-14T10:32:05Z"),
        ('{{format_date d "%d/%m/%Y"}}', {"d": "2026-06-20"}, "20/06/2026"),
        ('{{format_date "" "%H:%M" tz="America/New_York"}}', {}, "06:32"),
        ('{{format_date t "%Y-%m-%d %H:%M" tz="Asia/Kolkata"}}', {"t": "2026-06-14T20:00:00Z"}, "2026-06-15 01:30"),
        ("{{format_date d}}", {"d": "not a date"}, ""),
        (
            '{{#if (eq ai_classification "interested")}}book{{else}}skip{{/if}}',
            {"ai_classification": "interested"},
            "book",
        ),
        ('{{#if (eq n "3")}}y{{else}}n{{/if}}', {"n": 3}, "y"),
        ("{{#if (eq a b)}}y{{else}}n{{/if}}", {"a": None, "b": ""}, "n"),
        ('{{default extracted.preferred_time "any time"}}', {"extracted": {}}, "any time"),
        ('{{default x "fallback"}}', {"x": "given"}, "given"),
    ],
)
def test_helpers(template, context, expected):
    assert templating.render(template, context).value == expected


def test_default_keeps_json_types_in_bodies():
    rendered = templating.render_json('{"n": {{default x 5}}, "t": {{default extracted.t "any"}}}', {"extracted": {}})
    assert rendered.value == {"n": 5, "t": "any"}


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ('{{now_iso tz="Mars/Olympus"}}', "unknown time zone 'Mars/Olympus'"),
        ('{{now_iso tz="America"}}', "unknown time zone 'America'"),
        ('{{now_iso zone="UTC"}}', "takes no argument named zone"),
    ],
)
def test_helper_errors_are_template_errors(template, message):
    with pytest.raises(templating.TemplateError, match=message):
        templating.render(template, {})


@pytest.mark.django_db
def test_console_accepts_row_and_extracted_and_warns_about_shadowing(clients, make_endpoint, http_server):
    http_server.route("POST", "/appointments", lambda r: (201, {}, {"ok": True}))
    endpoint = make_endpoint(
        name="book",
        method="POST",
        path="/appointments",
        body_type="json",
        body_template='{"customer": "{{row.customer_id}}", "date": "{{extracted.preferred_date}}"}',
    )
    body = {"row": {"customer_id": "C-1"}, "extracted": {"preferred_date": "2026-06-20"}, "variables": {"row": "x"}}
    response = clients["member"].post(f"/api/v1/endpoints/{endpoint.pk}/test", body, format="json")
    assert response.status_code == 200
    assert http_server.last.json() == {"customer": "C-1", "date": "2026-06-20"}
    assert response.json()["warnings"][0] == "session variable 'row' is hidden by the reserved name row: rename it"
