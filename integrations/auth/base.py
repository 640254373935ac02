"""What a credential type is: declared fields, validation, and how it authenticates a request.

A type is one small module (`integrations/auth/<type>.py`) with one `CredentialType` subclass,
registered by dotted path in `integrations.auth.CREDENTIAL_TYPES`. The executor talks to a type only
through this interface:

- `apply(request)` before every attempt: add headers / query parameters (may fetch a token first and
  raise `CredentialUnavailable`, which the executor reports as a `failure`);
- `token_rejected(response)`: whether an answer means "your credentials were refused" (a 401, and
  for token types also a configured body condition such as `error.code == 'TOKEN_EXPIRED'`);
- `on_unauthorized(response)` after such an answer: return True to have the executor retry once
  (e.g. a refreshed OAuth token); the default is False;
- `test()` for the test console: check the credential works on its own (e.g. fetch a token); None
  means there is nothing to check beyond reaching the base URL;
- `redacted_headers()` / `redacted_query()`: names this type fills with secrets, always redacted.

Secret values are read through `self.secret(name)`, which resolves `env:`/`file:` references
(`integrations.auth.secret_refs`) at call time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from integrations import http
from integrations.auth import secret_refs

if TYPE_CHECKING:
    from integrations.models import Credential

HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class CredentialUnavailable(Exception):
    """The credential could not be obtained (missing secret, token endpoint down...). No secret in the message."""

    def result_error(self) -> str:
        """The `error` of the `failure` result this makes."""
        return f"credential could not be obtained: {self}"


class AuthorizationNeeded(CredentialUnavailable):
    """An OAuth2 authorization-code credential has no usable grant: an admin must connect it again."""

    MESSAGE = "OAuth2 authorization needed: reconnect the credential in the admin"

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason or self.MESSAGE)

    def result_error(self) -> str:
        return self.MESSAGE


class CredentialInvalid(Exception):
    """Config or secrets do not fit the type: `errors` is {"config"|"secrets": {field: [message]}}."""

    def __init__(self, errors: dict[str, dict[str, list[str]]]) -> None:
        super().__init__("Invalid credential settings")
        self.errors = errors


@dataclass(frozen=True)
class Field:
    """One config or secret field of a type. `kind`: string, map (name → value), header (a header name),
    url (http/https, checked against the outbound policy's literal-address rules), or json (any JSON
    value; the type checks it in `check()`); `choices` limits a string."""

    name: str
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()
    kind: str = "string"
    help: str = ""


@dataclass
class AuthTarget:
    """The parts of an outgoing request a credential may change."""

    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AuthTestResult:
    """`details` is shown by the console (e.g. token type and expiry) and must never hold a secret."""

    ok: bool
    message: str = ""
    details: dict = field(default_factory=dict)


class CredentialType:
    label: ClassVar[str] = ""
    config_fields: ClassVar[tuple[Field, ...]] = ()
    secret_fields: ClassVar[tuple[Field, ...]] = ()

    def __init__(self, credential: Credential) -> None:
        self.credential = credential
        self.config = {f.name: f.default for f in self.config_fields} | (credential.config or {})

    # --- validation (save time) -------------------------------------------------------------------------
    @classmethod
    def clean(cls, config: dict, secrets: dict) -> tuple[dict, dict]:
        """Validated, normalised (config, secrets); raises `CredentialInvalid` naming every bad field."""
        errors: dict[str, dict[str, list[str]]] = {}
        config = cls._clean_section("config", cls.config_fields, config, errors, fill_defaults=True)
        secrets = cls._clean_section("secrets", cls.secret_fields, secrets, errors, fill_defaults=False)
        if not errors:
            cls.check(config, secrets, errors)
        if errors:
            raise CredentialInvalid(errors)
        return config, secrets

    @classmethod
    def check(cls, config: dict, secrets: dict, errors: dict) -> None:
        """Cross-field checks a type adds (append to `errors[section][field]`)."""

    @classmethod
    def _clean_section(cls, section: str, fields: tuple[Field, ...], values: Any, errors: dict, *, fill_defaults: bool):
        if not isinstance(values, dict):
            errors[section] = {"non_field_errors": ["Expected an object."]}
            return {}
        known = {f.name: f for f in fields}
        problems: dict[str, list[str]] = {
            name: ["Unknown field for this type."] for name in values if name not in known
        }
        cleaned: dict[str, Any] = {}
        for f in fields:
            value = values.get(f.name)
            if value in (None, "", {}) and fill_defaults and f.default is not None:
                value = f.default
            if value in (None, "", {}):
                if f.required:
                    problems[f.name] = ["This field is required."]
                continue
            message = _field_problem(f, value)
            if not message and section == "secrets":
                message = secret_refs.reference_problem(value)
            if message:
                problems[f.name] = [message]
            else:
                cleaned[f.name] = value
        if problems:
            errors[section] = problems
        return cleaned

    # --- runtime ----------------------------------------------------------------------------------------
    def secret(self, name: str) -> Any:
        value = (self.credential.secrets or {}).get(name)
        try:
            return secret_refs.resolve(value)
        except secret_refs.SecretUnavailable as exc:
            raise CredentialUnavailable(f"{name}: {exc}") from None

    def secret_values(self) -> list[str]:
        """Every resolved secret string (the executor scrubs them from anything it shows or stores)."""
        values: list[str] = []
        for f in self.secret_fields:
            try:
                value = self.secret(f.name)
            except CredentialUnavailable:
                continue
            values.extend(value.values() if isinstance(value, dict) else [value])
        return [str(v) for v in values if v]

    def apply(self, request: AuthTarget) -> None:
        """Authenticate `request` (headers/query) before an attempt."""

    def apply_dry_run(self, request: AuthTarget) -> None:
        """Authenticate `request` for display only, with no network I/O (a dry run sends nothing).

        Types whose secrets are static apply them as usual (the display redacts them); types that
        fetch tokens override this to show placeholders instead.
        """
        self.apply(request)

    def token_rejected(self, response: Any) -> bool:
        """Whether `response` (an `integrations.http.HttpResponse`) says the credentials were refused."""
        return response.status_code == 401

    def on_unauthorized(self, response: Any) -> bool:
        """A 401 arrived: return True when the executor should retry once (new credentials obtained)."""
        return False

    def test(self) -> AuthTestResult | None:
        """Check the credential on its own for the test console; None: nothing beyond reaching the base URL."""
        return None

    def redacted_headers(self) -> set[str]:
        """Lower-case header names this type fills with secrets."""
        return set()

    def redacted_query(self) -> set[str]:
        """Query parameter names this type fills with secrets."""
        return set()


def _field_problem(f: Field, value: Any) -> str:
    if f.kind == "json":
        return ""
    if f.kind == "map":
        if not isinstance(value, dict) or not all(isinstance(k, str) and k for k in value):
            return "Expected an object of names to values."
        if not all(isinstance(v, str) for v in value.values()):
            return "Every value must be a string."
        return ""
    if not isinstance(value, str):
        return "Expected a string."
    if f.choices and value not in f.choices:
        return f"Must be one of: {', '.join(f.choices)}."
    if f.kind == "header" and not HEADER_NAME.match(value):
        return "Not a valid HTTP header name."
    if f.kind == "url":
        try:
            http.check_url(value, resolve=False)
        except http.OutboundError as exc:
            return f"{str(exc)[:1].upper()}{str(exc)[1:]}."
    if "\r" in value or "\n" in value:
        return "Must not contain line breaks."
    return ""
