"""The OpenAPI schema describes the tool routes and still validates without warnings."""

from __future__ import annotations

from django.core.management import call_command


def test_tool_routes_are_in_a_schema_that_validates(tmp_path):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    text = target.read_text()
    assert "/api/v1/agents/{id}/tools:" in text
    assert "/api/v1/tools/{tool_name}/invoke:" in text
