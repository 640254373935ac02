"""Admin forms: secret maps are write-only (shown masked, a blank value keeps the stored one), and the
same save-time checks as the REST API (`integrations.validation`, the credential type's `clean`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from django import forms
from django.utils.html import escape

from integrations import auth, parameters, validation
from integrations.models import CONNECTION_FIELDS, ENDPOINT_FIELDS, Connection, Credential, Endpoint
from integrations.secrets import masked, merge_secret_map
from tenants import widgets
from tenants.parsers import RequestJSONRefused, check_request_json

if TYPE_CHECKING:
    _ModelFormMixinBase = forms.ModelForm
else:  # the mixins below only ever sit in front of a ModelForm
    _ModelFormMixinBase = object


def json_object(raw: str | None) -> dict:
    """A textarea's JSON object ({} when blank); ValidationError otherwise."""
    raw = (raw or "").strip()
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        raise forms.ValidationError("Enter a JSON object.") from None
    if not isinstance(value, dict):
        raise forms.ValidationError("Enter a JSON object.")
    try:
        return check_request_json(value)
    except RequestJSONRefused as exc:
        raise forms.ValidationError(f"Enter a JSON object ({exc}).") from None


def _default_first(choices: tuple[str, ...], default: str) -> list[str]:
    return [default, *(choice for choice in choices if choice != default)]


class SecretMapFormMixin(_ModelFormMixinBase):
    """`secret_maps = {"field": partial_keys}`: each becomes an empty JSON textarea whose help shows the
    stored values masked; what is typed is merged into the stored map."""

    secret_maps: dict[str, bool] = {}
    # Maps edited as rows (field → the name column's label): each stored name is a row whose value is
    # blank (kept when left blank) with the masked value as its hint; removing the row drops it.
    secret_map_rows: dict[str, str] = {}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self.secret_maps:
            stored = getattr(self.instance, name, None) or {}
            shown = json.dumps(masked(stored), ensure_ascii=False) if stored else "nothing stored"
            widget = forms.Textarea(attrs={"rows": 3, "placeholder": '{"name": "value"}', "autocomplete": "off"})
            self.initial[name] = ""
            if name in self.secret_map_rows:
                widget = widgets.template_map(self.secret_map_rows[name])
                widget.set_placeholders({key: f"{value} (stored)" for key, value in masked(stored).items()})
                self.initial[name] = json.dumps(dict.fromkeys(stored, ""), ensure_ascii=False) if stored else ""
            self.fields[name] = forms.CharField(
                required=False,
                widget=widget,
                help_text=f"Write-only. Stored: {escape(shown)}. Leave a value blank to keep it.",
            )

    def clean_secret_map(self, name: str, stored: dict | None = None) -> dict:
        raw = (self.cleaned_data.get(name) or "").strip()
        value = json_object(raw)
        stored = (getattr(self.instance, name, None) or {}) if stored is None else stored
        if not raw and not self.secret_maps[name]:
            return dict(stored)
        return merge_secret_map(stored, value, partial_keys=self.secret_maps[name])

    def merge_secret_maps(self, data: dict, stored: dict | None = None) -> bool:
        """Put each merged secret map into `data`; False (with the form error added) when one is not JSON."""
        for name in self.secret_maps:
            try:
                data[name] = self.clean_secret_map(name, (stored or {}).get(name))
            except forms.ValidationError as exc:
                self.add_error(name, exc)
                return False
        return True

    def save(self, commit=True):
        for name in self.secret_maps:
            setattr(self.instance, name, self.cleaned_data[name])
        return super().save(commit)

    def _add_errors(self, errors: dict) -> None:
        for field, messages in errors.items():
            for message in messages if isinstance(messages, list) else [messages]:
                self.add_error(field if field in self.fields else None, f"{field}: {message}")


class CredentialForm(SecretMapFormMixin, forms.ModelForm):
    secret_maps = {"secrets": True}
    unique_in_tenant = {"name": "A credential with this name already exists."}  # see TenantBoundForm
    type = forms.ChoiceField(choices=())

    class Meta:
        model = Credential
        fields = ["tenant", "name", "type", "config", "secrets", "description"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["type"].choices = auth.type_choices()

    def clean(self):
        data = super().clean()
        kind = data.get("type")
        if not kind:
            return data
        if self.instance.pk and kind != self.instance.type:
            self.instance.state = {}  # runtime state (e.g. tokens) belongs to the old type
        cls = auth.get_type(kind)
        known = {f.name for f in cls.secret_fields}
        stored = {k: v for k, v in (self.instance.secrets or {}).items() if k in known}
        if not self.merge_secret_maps(data, {"secrets": stored}):
            return data
        try:
            data["config"], data["secrets"] = cls.clean(data.get("config") or {}, data["secrets"])
        except auth.CredentialInvalid as exc:
            for section, problems in exc.errors.items():
                for field, messages in problems.items():
                    self.add_error(section, f"{field}: {' '.join(messages)}")
        return data


class ConnectionForm(SecretMapFormMixin, forms.ModelForm):
    secret_maps = {"default_headers": False}
    secret_map_rows = {"default_headers": "Header"}
    base_url = forms.URLField(max_length=2000, assume_scheme="https")

    class Meta:
        model = Connection
        fields = ["tenant", *CONNECTION_FIELDS]

    def clean(self):
        data = super().clean()
        if not self.merge_secret_maps(data):
            return data
        if not data.get("retry"):
            data["retry"] = self.instance.retry_policy
        self._add_errors(validation.connection_errors(data))
        return data


class EndpointForm(SecretMapFormMixin, forms.ModelForm):
    secret_maps = {"headers": False}
    unique_in_tenant = {"tool_name": "An endpoint with this tool name already exists."}  # see TenantBoundForm
    secret_map_rows = {"headers": "Header"}
    follow_redirects = forms.NullBooleanField(
        required=False,
        widget=forms.Select(choices=[("", "As the connection"), ("true", "Follow"), ("false", "Do not follow")]),
    )

    class Meta:
        model = Endpoint
        fields = ENDPOINT_FIELDS  # the tenant is always the connection's
        widgets = {
            "query": widgets.template_map("Query parameter"),
            "response_mapping": widgets.StructuredJSONWidget(
                kind="map",
                columns=[widgets.text("name", "Variable"), widgets.text("value", "Path in the response", "data.id")],
                add_label="Add a mapped variable",
            ),
            "parameters": widgets.StructuredJSONWidget(
                kind="list",
                columns=[
                    widgets.text("name", "Name"),
                    # The default first: a new row is what the API assumes when a key is left out.
                    widgets.select("location", "Where", _default_first(parameters.LOCATIONS, "query")),
                    widgets.select("type", "Type", parameters.TYPES),
                    widgets.checkbox("required", "Required"),
                    widgets.text("description", "Description (for the AI)"),
                    widgets.json_value("default", "Default"),
                    widgets.json_value("enum", "Allowed values", '["a", "b"]'),
                    widgets.json_value("example", "Example"),
                ],
                add_label="Add a parameter",
            ),
        }

    def clean(self):
        data = super().clean()
        if not self.merge_secret_maps(data):
            return data
        self._add_errors(validation.endpoint_errors(data))
        return data


class EndpointTestForm(forms.Form):
    params = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4}), help_text="JSON object")
    variables = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 4}), help_text="JSON object: session variables"
    )
    row = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="JSON object: a campaign row's columns ({{row.customer_id}})",
    )
    extracted = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="JSON object: what a call's analysis extracted ({{extracted.preferred_date}})",
    )

    def __init__(self, *args, endpoint: Endpoint | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        # Say which params the endpoint declares, so a first test does not start from a blank box.
        names = [
            p["name"] for p in getattr(endpoint, "parameters", None) or [] if isinstance(p, dict) and p.get("name")
        ]
        if names:
            field = self.fields["params"]
            field.widget.attrs["placeholder"] = json.dumps(dict.fromkeys(names, "…"), ensure_ascii=False)
            # Django does not escape help texts.
            field.help_text = f"JSON object of the endpoint's parameters: {escape(', '.join(names))}"

    def clean_params(self) -> dict:
        return json_object(self.cleaned_data.get("params"))

    def clean_variables(self) -> dict:
        return json_object(self.cleaned_data.get("variables"))

    def clean_row(self) -> dict:
        return json_object(self.cleaned_data.get("row"))

    def clean_extracted(self) -> dict:
        return json_object(self.cleaned_data.get("extracted"))
