"""Small pieces on their own: parameters, mapping, secret references, redaction, secret maps, registry."""

from __future__ import annotations

import pytest

from integrations import auth, mapping, parameters
from integrations.auth import secret_refs
from integrations.redaction import Redactor
from integrations.secrets import masked, merge_secret_map


class _Endpoint:
    def __init__(self, declared):
        self.parameters, problems = parameters.clean_declarations(declared)
        assert problems == []


def test_coercion_per_declared_type():
    endpoint = _Endpoint(
        [
            {"name": "n", "type": "integer"},
            {"name": "x", "type": "number"},
            {"name": "b", "type": "boolean"},
            {"name": "o", "type": "object"},
            {"name": "a", "type": "array"},
            {"name": "s", "type": "string"},
        ]
    )

    values = parameters.validate_arguments(
        endpoint, {"n": "42", "x": "1.5", "b": "no", "o": '{"k": 1}', "a": [1], "s": 7, "extra": "kept"}
    )

    assert values == {"n": 42, "x": 1.5, "b": False, "o": {"k": 1}, "a": [1], "s": "7", "extra": "kept"}


@pytest.mark.parametrize(
    ("kind", "value"),
    [("integer", "4.5"), ("integer", True), ("number", "abc"), ("boolean", "maybe"), ("object", "[]")],
)
def test_bad_values_are_refused(kind, value):
    endpoint = _Endpoint([{"name": "v", "type": kind}])

    with pytest.raises(parameters.ParameterError):
        parameters.validate_arguments(endpoint, {"v": value})


def test_unknown_arguments_can_be_refused_for_tools():
    endpoint = _Endpoint([{"name": "city", "required": True}])

    with pytest.raises(parameters.ParameterError, match="unknown argument: zip"):
        parameters.validate_arguments(endpoint, {"city": "Lima", "zip": 1}, allow_extra=False)


def test_json_schema_for_tools():
    endpoint = _Endpoint(
        [
            {"name": "city", "type": "string", "required": True, "description": "City name", "example": "Lima"},
            {"name": "days", "type": "integer", "default": 3, "enum": [1, 3, 7]},
        ]
    )

    assert parameters.json_schema(endpoint) == {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City name", "examples": ["Lima"]},
            "days": {"type": "integer", "enum": [1, 3, 7], "default": 3},
        },
        "required": ["city"],
        "additionalProperties": False,
    }


def test_declaration_problems_name_the_parameter():
    _, problems = parameters.clean_declarations(
        [{"name": "a", "type": "integer", "enum": ["x"]}, {"name": "a"}, {"name": "b", "where": "?"}]
    )

    assert problems == [
        "parameters[0].enum: 'x' must be an integer",
        "parameters[1].name: duplicate parameter 'a'",
        "parameters[2].where: unknown key",
    ]


def test_mapping_keeps_types_and_reports_unresolved():
    body = {"data": {"price": {"amount": 12.5}, "tags": ["a"]}, "items": [{"id": 7}], "flag": False, "none": None}

    mapped, unresolved = mapping.apply_mapping(
        {"p": "data.price.amount", "t": "data.tags", "i": "response.items[0].id", "f": "flag", "m": "items[3].id"},
        body,
        200,
        {},
    )

    assert mapped == {"p": 12.5, "t": ["a"], "i": 7, "f": False, "m": None}
    assert unresolved == ["items[3].id"]


def test_mapping_paths_are_checked():
    problems = mapping.clean_mapping({"a": "data.price", "b": "items[0", "c": ""})

    assert [p.split(":")[0] for p in problems] == ["b", "c"]
    assert problems[0].startswith("b: invalid path 'items[0'")


def test_secret_references(monkeypatch, tmp_path):
    monkeypatch.setenv("SWB_X", "from-env")
    (tmp_path / "s").write_text("from-file\n")

    assert secret_refs.resolve("env:SWB_X") == "from-env"
    assert secret_refs.resolve(f"file:{tmp_path / 's'}") == "from-file"
    assert secret_refs.resolve("literal:value") == "literal:value"
    assert secret_refs.resolve({"a": "env:SWB_X", "b": "plain"}) == {"a": "from-env", "b": "plain"}
    with pytest.raises(secret_refs.SecretUnavailable, match="cannot be read"):
        secret_refs.resolve(f"file:{tmp_path / 'missing'}")


def test_a_resolver_plugs_in(monkeypatch):
    monkeypatch.setitem(secret_refs.RESOLVERS, "vault", "os.path.basename")
    secret_refs._resolver.cache_clear()

    assert secret_refs.reference_scheme("vault:kv/app/token") == "vault"
    assert secret_refs.resolve("vault:kv/app/token") == "token"
    secret_refs._resolver.cache_clear()


def test_redactor():
    redactor = Redactor(header_names={"X-Mine"}, query_names={"k"}, values=["s3cr3t-value"])

    assert redactor.headers({"X-Mine": "a", "Authorization": "b", "Cookie": "c", "Accept": "s3cr3t-value!"}) == {
        "X-Mine": "••••",
        "Authorization": "••••",
        "Cookie": "••••",
        "Accept": "••••!",
    }
    assert redactor.url("https://u:p@h.example/p?k=1&a=2&token=3&x=s3cr3t-value") == (
        "https://••••@h.example/p?k=••••&a=2&token=••••&x=••••"
    )
    assert redactor.data({"deep": ["has s3cr3t-value inside"]}) == {"deep": ["has •••• inside"]}


def test_secret_maps():
    assert merge_secret_map({"a": "1", "b": "2"}, {"a": "", "c": "3"}, partial_keys=True) == {
        "a": "1",
        "b": "2",
        "c": "3",
    }
    assert merge_secret_map({"a": "1", "b": "2"}, {"a": "", "c": "3"}, partial_keys=False) == {"a": "1", "c": "3"}
    assert masked({"token": "abcdefghijklmnop", "params": {"x": "short"}}) == {
        "token": "••••mnop",
        "params": {"x": "••••"},
    }


def test_the_registry_imports_lazily_and_lists_types():
    assert [name for name, _ in auth.type_choices()] == [
        "none",
        "api_key",
        "bearer",
        "basic",
        "query_params",
        "oauth2_client_credentials",
        "oauth2_authorization_code",
        "challenge_response",
    ]
    assert auth.get_type("bearer").__name__ == "BearerAuth"
    with pytest.raises(KeyError):
        auth.get_type("nope")


def test_url_fields_are_checked(monkeypatch, settings):
    from integrations.auth.base import CredentialInvalid, CredentialType, Field

    class WithTokenUrl(CredentialType):
        config_fields = (Field("token_url", required=True, kind="url"),)

    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = False
    assert WithTokenUrl.clean({"token_url": "https://auth.example.com/token"}, {})[0] == {
        "token_url": "https://auth.example.com/token"
    }
    with pytest.raises(CredentialInvalid) as caught:
        WithTokenUrl.clean({"token_url": "http://10.0.0.1/token"}, {})
    assert caught.value.errors == {"config": {"token_url": ["Destination not allowed: 10.0.0.1 is a private address."]}}
