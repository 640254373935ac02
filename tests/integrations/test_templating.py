"""Unit tests of integrations.templating: syntax, encoding by destination, safety, helpers."""

from __future__ import annotations

from integrations.templating import render, render_json, render_path


def test_renders_paths_and_shorthand():
    assert render("Hi {{user.name}} #{id}", {"user": {"name": "Ann"}, "id": 7}).value == "Hi Ann #7"


def test_json_value_cannot_inject():
    value = 'a"},"x":{{y}}\n'
    assert render_json('{"name": "{{name}}"}', {"name": value, "y": 1}).value == {"name": value}


def test_path_segment_encoding():
    assert render_path("/items/{id}", {"id": "a/b?c#d e%"}).value == "/items/a%2Fb%3Fc%23d%20e%25"
