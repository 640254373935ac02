"""Unit tests of integrations.templating: syntax, encoding by destination, safety, helpers, limits.

What handlebars.js itself does is checked by the differential test (test_templating_differential.py);
these tests pin our extras (shorthand, helpers, destinations, JSON bodies) and our safety promises.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest

from integrations import templating
from integrations.templating import (
    Rendered,
    TemplateError,
    compile_template,
    register_helper,
    render,
    render_header,
    render_headers,
    render_json,
    render_path,
    render_query,
    render_query_value,
    validate,
    validate_json,
)
from integrations.templating import helpers as helpers_module


@pytest.fixture
def frozen_clock(monkeypatch):
    instant = datetime(2026, 6, 14, 10, 32, 5, 123456, tzinfo=UTC)
    monkeypatch.setattr(helpers_module, "utcnow", lambda: instant)
    return instant


# --- syntax --------------------------------------------------------------------------------------


def test_paths_this_and_parent_scopes():
    context = {"name": "Ann", "user": {"first": "Jo", "address": {"city": "Oslo"}}}
    template = "{{user.first}} {{user/address/city}} {{this.name}} {{#with user}}{{first}}/{{../name}}{{/with}}"
    assert render(template, context).value == "Jo Oslo Ann Jo/Ann"


def test_each_data_variables():
    template = "{{#each items}}{{@index}}{{#if @first}}^{{/if}}{{#if @last}}${{/if}}{{this}} {{/each}}"
    assert render(template, {"items": ["a", "b", "c"]}).value == "0^a 1b 2$c "
    assert render("{{#each m}}{{@key}}={{this}};{{/each}}", {"m": {"x": 1, "y": 2}}).value == "x=1;y=2;"
    assert render("{{#each l}}{{@root.top}}{{/each}}", {"l": [1, 2], "top": "T"}).value == "TT"


def test_segment_literals():
    context = {"items": ["zero", "one"], "odd key": "spaced", "o": {"a b": 1}}
    assert render("{{items.[0]}} {{items.[1]}} {{[odd key]}} {{o.[a b]}}", context).value == "zero one spaced 1"


def test_blocks_with_else_and_inverse():
    assert render("{{#if a}}A{{else if b}}B{{else}}C{{/if}}", {"b": 1}).value == "B"
    assert render("{{#if a}}A{{^}}not A{{/if}}", {}).value == "not A"
    assert render("{{#unless a}}no a{{/unless}}", {"a": False}).value == "no a"
    assert render("{{#each l}}x{{else}}empty{{/each}}", {"l": []}).value == "empty"
    assert render("{{#with u}}{{n}}{{else}}none{{/with}}", {}).value == "none"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0, "no"),
        ("", "no"),
        ([], "no"),
        (None, "no"),
        (False, "no"),
        ({}, "yes"),
        ("0", "yes"),
        ([0], "yes"),
        (0.5, "yes"),
    ],
)
def test_if_truthiness_matches_handlebars(value, shown):
    assert render("{{#if v}}yes{{else}}no{{/if}}", {"v": value}).value == shown


def test_if_include_zero():
    assert render("{{#if v includeZero=true}}yes{{else}}no{{/if}}", {"v": 0}).value == "yes"


def test_comments_and_whitespace_control():
    assert render("a{{! note }}b{{!-- }} still a comment --}}c", {}).value == "abc"
    assert render("[  {{~x~}}  ]", {"x": 1}).value == "[1]"
    assert render("{{#if t}}\n  yes\n{{/if}}\n", {"t": True}).value == "  yes\n"


def test_block_parameters():
    context = {"items": [{"n": "a", "tags": ["x"]}], "user": {"name": "Jo"}}
    template = (
        "{{#each items as |item i|}}{{i}}{{item.n}}{{#each item.tags as |tag|}}{{tag}}{{item.n}}{{/each}}{{/each}}"
    )
    assert render(template, context).value == "0axa"
    assert render("{{#with user as |u|}}{{u.name}}{{u.age}}{{/with}}", context) == Rendered("Jo", ["u.age"])
    with pytest.raises(TemplateError, match="only work with #each and #with"):
        validate("{{#if x as |y|}}{{/if}}")


def test_literals_lookup_and_subexpressions():
    context = {"m": {"k": "v", "a b": 2}, "l": [10, 20], "key": "k"}
    assert render('{{lookup m "k"}} {{lookup m key}} {{lookup l 1}} {{lookup m "a b"}}', context).value == "v v 20 2"
    assert render("{{#with (lookup m 'k')}}{{this}}{{/with}}", context).value == "v"
    assert render("{{#if (lookup m 'missing')}}y{{else}}n{{/if}}", context).value == "n"


def test_hash_arguments_are_passed_to_helpers():
    register_helper("join_with", lambda render, args, hash_: hash_.get("sep", ",").join(map(str, args)), 1, 9)
    try:
        assert render("{{join_with a b sep='-'}}", {"a": 1, "b": 2}).value == "1-2"
    finally:
        templating.HELPERS.pop("join_with")
        compile_template.cache_clear()


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (True, "true"),
        (False, "false"),
        (1.0, "1"),
        (-0.0, "0"),
        (1.5, "1.5"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (1.5e-7, "1.5e-7"),
        (0.000001, "0.000001"),
        (123456789.125, "123456789.125"),
        (2**53 + 1, "9007199254740993"),
        (float("nan"), "NaN"),
        (float("inf"), "Infinity"),
        ([1, None, [2, 3], "x"], "1,,2,3,x"),
        ({"a": 1}, "[object Object]"),
        ([], ""),
    ],
)
def test_values_are_stringified_like_javascript(value, text):
    assert render("{{v}}", {"v": value}).value == text


def test_adjacent_numbers_are_concatenated_not_added():
    # handlebars.js 4.7 renders "10" here (it joins adjacent outputs with +); we write each value.
    assert render("{{n}}{{n}}", {"n": 5}).value == "55"


# --- the {name} shorthand and escapes -------------------------------------------------------------


def test_shorthand_is_a_mustache():
    context = {"customerId": 42, "a": {"b": {"c": "deep"}}}
    assert render("/customers/{customerId}/x/{a.b.c}", context).value == "/customers/42/x/deep"


def test_shorthand_leaves_other_braces_alone():
    context = {"x": 1}
    assert (
        render('{"a": {"b": 2}} { x } {1x} {a-b} {x.} {}', context).value == '{"a": {"b": 2}} { x } {1x} {a-b} {x.} {}'
    )
    assert render('{"id": {x}}', context).value == '{"id": 1}'


def test_escapes_write_braces_literally():
    assert render(r"\{{x}} and \{x} and {{x}}", {"x": 1}).value == "{{x}} and {x} and 1"
    assert render(r"\\{{x}}", {"x": 1}).value == "\\1"


def test_shorthand_counts_as_reference_for_missing():
    assert render("{a.b}", {}).missing == ["a.b"]


# --- missing variables ----------------------------------------------------------------------------


def test_missing_variables_are_reported_once_in_order():
    rendered = render(
        "{{a}} {{user.name}} {{a}} {{#each list}}{{/each}} {{present}} {{nul}}", {"present": 1, "nul": None}
    )
    assert rendered == Rendered("    1 ", ["a", "user.name", "list"])


def test_null_on_the_way_counts_as_missing_but_null_value_does_not():
    assert render("{{a.b}}|{{c}}", {"a": None, "c": None}).missing == ["a.b"]


def test_tests_in_if_and_sections_are_not_reported():
    assert render("{{#if nick}}{{nick}}{{/if}}{{#unless x}}{{/unless}}{{#opt}}y{{/opt}}", {}).missing == []


def test_missing_inside_blocks_and_parents():
    assert render("{{#each l}}{{name}}{{../gone}}{{/each}}", {"l": [{}]}).missing == ["name", "../gone"]


# --- safety --------------------------------------------------------------------------------------


def test_no_python_attribute_access_or_method_calls():
    context = {"x": {"k": 1}, "items": [1, 2], "s": "text"}
    before = copy.deepcopy(context)
    template = "{{__class__}}|{{x.__dict__}}|{{items.pop}}|{{s.upper}}|{{x.keys}}|{{lookup items 'pop'}}|{{x.__class__.__name__}}"
    assert render(template, context).value == "||||||"
    assert context == before


def test_methods_cannot_be_called_as_helpers():
    context = {"data": {}}
    with pytest.raises(TemplateError, match="unknown helper"):
        render("{{data.setdefault 'k' 'v'}}", context)
    with pytest.raises(TemplateError, match="unknown helper"):
        render("{{setdefault data 'k'}}", context)
    assert context == {"data": {}}


def test_length_is_the_only_property_of_lists_and_strings():
    assert render("{{l.length}} {{s.length}} {{s.[1]}}", {"l": [1, 2, 3], "s": "abc"}).value == "3 3 b"


def test_rendered_values_are_never_rendered_again():
    assert render("{{v}}", {"v": "{{secret}} {secret}", "secret": "S"}).value == "{{secret}} {secret}"


def test_output_size_is_capped():
    context = {"l": list(range(1100)), "s": "x" * 1000}
    with pytest.raises(TemplateError, match="too large"):
        render("{{#each l}}{{../s}}{{/each}}", context)


def test_loop_iterations_are_capped():
    context = {"l": list(range(1000))}
    with pytest.raises(TemplateError, match="too long"):
        render("{{#each l}}{{#each ../l}}{{/each}}{{/each}}", context)


def test_nesting_depth_is_capped():
    deep = "{{#if a}}" * 100 + "{{/if}}" * 100
    with pytest.raises(TemplateError, match="nested too deeply"):
        validate(deep)


def test_long_else_if_chains_and_deep_json_are_refused_not_crashing():
    with pytest.raises(TemplateError, match="too many"):
        validate("{{#if a}}" + "{{else if b}}" * 100 + "{{/if}}")
    with pytest.raises(TemplateError, match="nested too deeply"):
        render_json("[" * 5000 + "]" * 5000, {})
    with pytest.raises(TemplateError, match="nested too deeply"):
        render_json("[" * 5000 + "{{x}}" + "]" * 5000, {"x": 1})
    with pytest.raises(TemplateError, match="too long"):
        validate("x" * (templating.runtime.MAX_TEMPLATE + 1))


def test_whitespace_rules_stay_linear_on_long_blank_runs():
    import time

    blank = " \n" * 50_000
    started = time.perf_counter()
    assert render("{{#if t}}" + blank + "x" + blank + "{{~/if}}", {"t": True}).value.endswith("x")
    assert time.perf_counter() - started < 1


def test_other_value_types_render_as_text_without_attribute_access():
    class Sneaky:
        secret = "S"

        def __str__(self):
            return "sneaky"

    assert render("{{v}} {{v.secret}}", {"v": Sneaky()}).value == "sneaky "


# --- helpers -------------------------------------------------------------------------------------


def test_hmac_sha256_known_value():
    rendered = render('{{hmac_sha256 "key" "The quick brown fox jumps over the lazy dog"}}', {})
    assert rendered.value == "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"


def test_hash_and_encoding_helpers():
    context = {"s": "abc", "u": "a b/c?d=é"}
    assert render("{{sha256 s}}", context).value == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert render("{{base64 'user:pass'}}", context).value == "dXNlcjpwYXNz"
    assert render("{{urlencode u}}", context).value == "a%20b%2Fc%3Fd%3D%C3%A9"


def test_helpers_compose_with_subexpressions(frozen_clock):
    rendered = render("{{hmac_sha256 secret (now_unix)}}", {"secret": "k"})
    import hashlib
    import hmac

    assert rendered.value == hmac.new(b"k", b"1781433125", hashlib.sha256).hexdigest()


def test_time_helpers_use_one_instant_per_render(frozen_clock):
    assert render("{{now_iso}} {{now_unix}}", {}).value == "2026-06-14T10:32:05Z 1781433125"
    assert render_json('{"ts": "{{now_unix}}", "at": "{now_iso}"}', {}).value == {
        "ts": 1781433125,
        "at": "2026-06-14T10:32:05Z",
    }


def test_uuid_helper():
    first, second = render("{{uuid}} {{uuid}}", {}).value.split()
    assert len(first) == 36 and first[14] == "4" and first != second


def test_helpers_shadow_context_keys_but_this_reaches_them():
    context = {"uuid": "mine"}
    assert render("{{this.uuid}}", context).value == "mine"
    assert len(render("{{uuid}}", context).value) == 36


# --- destinations ---------------------------------------------------------------------------------


def test_path_values_are_encoded_as_segments():
    assert render_path("/items/{id}/sub", {"id": "a/b?c#d e%"}).value == "/items/a%2Fb%3Fc%23d%20e%25/sub"
    assert render_path("/a b/{{x}}", {"x": "ü"}).value == "/a b/%C3%BC"


def test_query_values_are_plain_text():
    assert render_query_value("{q}", {"q": "a&b=c d"}).value == "a&b=c d"
    assert render_query({"q": "{q}", "{k}": "1"}, {"q": "x y", "k": "key"}) == Rendered({"q": "x y", "key": "1"}, [])


def test_escape_applies_to_values_only():
    assert render("<{{v}}>", {"v": "x"}, escape=str.upper).value == "<X>"


@pytest.mark.parametrize("value", ["a\r\nX-Evil: 1", "line\nbreak", "cr\r", "nul\0"])
def test_header_refuses_line_breaks(value):
    with pytest.raises(TemplateError, match="line break"):
        render_header("Bearer {{t}}", {"t": value})


def test_header_refuses_non_latin1_and_renders_maps():
    with pytest.raises(TemplateError, match="Latin-1"):
        render_header("{{v}}", {"v": "日本"})
    assert render_headers({"X-Id": "{id}", "Authorization": "Bearer {{t}}"}, {"id": 1, "t": "tok"}) == Rendered(
        {"X-Id": "1", "Authorization": "Bearer tok"}, []
    )


# --- JSON bodies ---------------------------------------------------------------------------------


HOSTILE = 'quote " brace } {{x}} {x} \\ newline\n end'


def test_json_string_values_cannot_break_the_json():
    rendered = render_json(
        '{"name": "{{name}}", "note": "n: {{name}}!", "list": ["{name}"]}', {"name": HOSTILE, "x": "X"}
    )
    assert rendered.value == {"name": HOSTILE, "note": f"n: {HOSTILE}!", "list": [HOSTILE]}


def test_json_text_mode_values_cannot_break_the_json():
    template = (
        '{"items": [{{#each items}}{{#unless @first}},{{/unless}}"{{this}}"{{/each}}], "raw": {{v}}, "s": "a{{v}}"}'
    )
    rendered = render_json(template, {"items": [HOSTILE, "b"], "v": HOSTILE, "x": "X"})
    assert rendered.value == {"items": [HOSTILE, "b"], "raw": HOSTILE, "s": "a" + HOSTILE}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, 5),
        (2.5, 2.5),
        (True, True),
        (None, None),
        ({"a": [1, {"b": None}]}, {"a": [1, {"b": None}]}),
        ([1, "x"], [1, "x"]),
        ("5", "5"),
    ],
)
def test_json_lone_expression_keeps_its_type(value, expected):
    assert render_json('{"v": "{{v}}", "s": "{v}", "l": ["{{{v}}}"]}', {"v": value}).value == {
        "v": expected,
        "s": expected,
        "l": [expected],
    }
    assert render_json('{"v": {{v}}}', {"v": value}).value == {"v": expected}


def test_json_text_mode_keeps_types_of_lone_values_in_strings():
    template = (
        '{"q": "{{qty}}", "items": [{{#each l}}{{#unless @first}},{{/unless}}"{{this}}"{{/each}}], "s": "#{{qty}}"}'
    )
    assert render_json(template, {"qty": 5, "l": [1, "a", None]}).value == {"q": 5, "items": [1, "a", None], "s": "#5"}


def test_json_quotes_in_parsed_template_strings_are_text():
    template = '{"a": "say \\"{{#if x}}{{x}}{{/if}}\\" \\\\ {{x}}"}'
    assert render_json(template, {"x": 'q"'}).value == {"a": 'say "q"" \\ q"'}


def test_json_placeholders_cannot_be_forged_by_template_text():
    forged = "\ue000" + "0" * 16 + "0\ue001"
    assert render_json('{"a": "' + forged + '", "b": {{b}}}', {"b": 1}).value == {"a": forged, "b": 1}


def test_json_lone_missing_value_is_null_and_reported():
    assert render_json('{"v": "{{gone}}", "t": "x{{gone2}}"}', {}) == Rendered({"v": None, "t": "x"}, ["gone", "gone2"])


def test_json_keys_are_rendered_as_text_and_braces_of_json_untouched():
    rendered = render_json('{"{{k}}": {"{n}": "{{n}}"}, "fixed": {"a": 1}}', {"k": 7, "n": 2})
    assert rendered.value == {"7": {"2": 2}, "fixed": {"a": 1}}


def test_json_output_is_a_copy_of_context_data():
    context = {"o": {"a": [1]}}
    rendered = render_json('{"o": "{{o}}"}', context)
    rendered.value["o"]["a"].append(2)
    assert context == {"o": {"a": [1]}}


def test_json_text_mode_must_produce_valid_json():
    with pytest.raises(TemplateError, match="not valid JSON"):
        render_json('{"a": {{a}} {{b}}}', {"a": 1, "b": 2})
    with pytest.raises(TemplateError, match="not valid JSON"):
        render_json('{"a": 1,}', {})


def test_json_value_after_backslash_in_string_is_refused():
    with pytest.raises(TemplateError, match="backslash"):
        render_json('{"a": "\\\\{{x}}", "b": {{y}}}', {"x": '"', "y": 1})


def test_json_blank_template_is_no_body():
    assert render_json("  ", {}) == Rendered(None, [])


def test_json_non_finite_numbers_become_null():
    assert render_json('{"v": "{{v}}", "w": {{v}}}', {"v": float("nan")}).value == {"v": None, "w": None}
    assert render_json('{"v": "{{v}}"}', {"v": float("inf")}).value == {"v": None}


def test_json_result_serialises():
    rendered = render_json(
        '{"a": "{{a}}", "b": [{{#each l}}{{this}}{{#unless @last}},{{/unless}}{{/each}}]}', {"a": "x", "l": [1, 2]}
    )
    assert json.loads(json.dumps(rendered.value)) == {"a": "x", "b": [1, 2]}


# --- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{#if a}}x", "line 1, column 1: {{#if}} is never closed (expected {{/if}})"),
        ("a\n{{#each l}}{{/if}}", "line 2, column 12: {{/if}} does not match {{#each}} (expected {{/each}})"),
        ("{{/if}}", "line 1, column 1: {{/if}} closes a block that was never opened"),
        ("{{else}}", "line 1, column 1: {{else}} outside a block"),
        ("{{nope x}}", "line 1, column 1: unknown helper 'nope'"),
        ("{{#nope x}}{{/nope}}", "line 1, column 1: unknown block helper 'nope'"),
        ("{{sha256}}", "helper 'sha256' takes 1 argument(s), got 0"),
        ("{{#if}}{{/if}}", "#if requires exactly one argument"),
        ("{{if x}}", "if is a block helper"),
        ("{{x", "{{ is never closed"),
        ("{{x} }}", "unexpected character '}'"),
        ("{{> partial}}", "partials ({{> name}}) are not supported"),
        ("{{x.this}}", "invalid path: x.this"),
        ("{{#sha256 x}}{{/sha256}}", "'sha256' is not a block helper"),
        ("{{!-- open", "comment {{!-- is never closed"),
        ("{{{x}}", "expected }}}"),
        ("{{lookup a (nope)}}", "unknown helper 'nope'"),
        ("{{items.1}}", "line 1, column 9: a number at the end of a path needs brackets: .[1]"),
    ],
)
def test_validate_reports_readable_errors(template, message):
    with pytest.raises(TemplateError) as info:
        validate(template)
    assert message in str(info.value)


def test_template_error_is_a_value_error_with_position():
    with pytest.raises(ValueError) as info:
        validate("ok\n  {{#if}}{{/if}}")
    assert (info.value.line, info.value.column) == (2, 3)


def test_validate_accepts_good_templates_and_json():
    validate("{{#each l}}{{@index}}{{/each}} {x} {{hmac_sha256 k (sha256 m)}}")
    validate_json('{"a": "{{a}}", "b": {{b}}}', sample={"a": 1, "b": 2})
    with pytest.raises(TemplateError, match=r"string at \$\.a"):
        validate_json('{"a": "{{#if}}"}')
    with pytest.raises(TemplateError, match="not valid JSON"):
        validate_json('{"a": {{a}} {{b}}}', sample={})


def test_compiled_templates_are_cached():
    assert compile_template("{{cached}}") is compile_template("{{cached}}")


def test_non_text_template_is_refused():
    with pytest.raises(TemplateError, match="must be text"):
        render(42, {})  # type: ignore[arg-type]
