"""LiveKit trunk settings through /api/v1/sip-trunks and the admin form: validated, secrets write-only."""

from __future__ import annotations

import json
import os
import tempfile

import pytest

from calls.admin import SipTrunkForm
from calls.models import SipTrunk
from tests.support.livekit_server import API_SECRET

CONFIG = {"url": "https://acme.livekit.cloud", "sip_trunk_id": "ST_abc123"}
SECRETS = {"api_key": "APIabcdef123", "api_secret": API_SECRET}


def create(client, **fields):
    body = {"name": "LK", "trunk_phone": "+14155550123", "dialer": "livekit", "dialer_config": CONFIG, **fields}
    return client.post("/api/v1/sip-trunks", body, format="json")


@pytest.fixture
def admin_client(clients):
    return clients["admin"]


@pytest.fixture(autouse=True)
def public_dns(monkeypatch):
    """acme.livekit.cloud must not be looked up for real: tests never leave 127.0.0.1."""
    import ipaddress

    from integrations import destinations

    monkeypatch.setattr(destinations, "resolve_host", lambda host, port: (ipaddress.ip_address("203.0.114.10"),))


def test_a_livekit_trunk_is_created_with_defaults_and_masked_secrets(admin_client, tenant):
    response = create(admin_client, dialer_secrets=SECRETS)
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["dialer_config"] == {**CONFIG, "ringing_timeout": 30, "max_call_duration": 1800}
    assert data["dialer_secrets"] == {"api_key": "••••f123", "api_secret": "••••ters"}
    trunk = SipTrunk.objects.get(pk=data["id"])
    assert trunk.dialer_secrets == SECRETS
    # Encrypted at rest: the raw column holds no plaintext.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT dialer_secrets FROM calls_siptrunk WHERE id = %s", [trunk.pk.hex])
        raw = cursor.fetchone()[0]
    assert API_SECRET not in str(raw) and "APIabcdef123" not in str(raw)
    assert API_SECRET not in admin_client.get(f"/api/v1/sip-trunks/{trunk.pk}").content.decode()


def test_blank_secrets_keep_the_stored_ones_and_references_are_accepted(admin_client):
    trunk_id = create(admin_client, dialer_secrets=SECRETS).json()["id"]
    response = admin_client.patch(
        f"/api/v1/sip-trunks/{trunk_id}",
        {"dialer_secrets": {"api_key": "", "api_secret": "env:SWB_LK_SECRET"}},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert SipTrunk.objects.get(pk=trunk_id).dialer_secrets == {
        "api_key": "APIabcdef123",
        "api_secret": "env:SWB_LK_SECRET",
    }


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"dialer_config": {"sip_trunk_id": "ST_a"}}, "dialer_config", "url is required"),
        ({"dialer_config": {**CONFIG, "url": "ftp://x.livekit.cloud"}}, "dialer_config", "scheme ftp is not allowed"),
        ({"dialer_config": {**CONFIG, "url": "http://127.0.0.1:7880"}}, "dialer_config", "loopback address"),
        ({"dialer_config": {**CONFIG, "sip_trunk_id": "trunk-1"}}, "dialer_config", "sip_trunk_id must be"),
        ({"dialer_config": {**CONFIG, "ringing_timeout": 0}}, "dialer_config", "between 1 and 120"),
        ({"dialer_config": {**CONFIG, "ringing_timeout": 2.5}}, "dialer_config", "whole number"),
        ({"dialer_config": {**CONFIG, "max_call_duration": True}}, "dialer_config", "whole number"),
        ({"dialer_config": {**CONFIG, "room": "x"}}, "dialer_config", "unknown setting(s)"),
        ({"dialer_config": ["x"]}, "dialer_config", "must be a JSON object"),
        ({}, "dialer_secrets", "dialer_secrets.api_key is required"),
        ({"dialer_secrets": {"api_key": "k"}}, "dialer_secrets", "dialer_secrets.api_secret is required"),
        ({"dialer_secrets": {**SECRETS, "token": "t"}}, "dialer_secrets", "unknown secret(s)"),
        ({"dialer_secrets": {**SECRETS, "api_key": "env:"}}, "dialer_secrets", "references nothing"),
        ({"dialer_secrets": {**SECRETS, "api_key": "two words"}}, "dialer_secrets", "one word"),
        ({"dialer_secrets": "secret"}, "dialer_secrets", "Expected an object"),
        ({"dialer_secrets": {**SECRETS, "api_secret": "env:LIVEKIT_API_SECRET"}}, "dialer_secrets", "is not allowed"),
        ({"dialer_secrets": {**SECRETS, "api_secret": "env:HOME"}}, "dialer_secrets", "is not allowed"),
        ({"dialer_secrets": {**SECRETS, "api_secret": "file:/etc/passwd"}}, "dialer_secrets", "is not allowed"),
    ],
)
def test_bad_settings_are_400_and_nothing_is_saved(admin_client, settings, fields, field, message):
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = False
    if field == "dialer_config":
        fields = {"dialer_secrets": SECRETS, **fields}
    response = create(admin_client, **fields)
    assert response.status_code == 400
    assert message in " ".join(response.json()["details"][field])
    assert not SipTrunk.objects.exists()


def test_simulated_trunks_take_no_secrets(admin_client):
    response = admin_client.post(
        "/api/v1/sip-trunks",
        {"name": "Sim", "trunk_phone": "+14155550123", "dialer_secrets": {"api_key": "k"}},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["details"]["dialer_secrets"] == ["the simulated dialer takes no secrets"]


def test_switching_a_livekit_trunk_back_to_simulated_drops_its_secrets(admin_client):
    trunk_id = create(admin_client, dialer_secrets=SECRETS).json()["id"]
    response = admin_client.patch(f"/api/v1/sip-trunks/{trunk_id}", {"dialer": "simulated"}, format="json")
    assert response.status_code == 200, response.json()
    assert SipTrunk.objects.get(pk=trunk_id).dialer_secrets == {}


def test_the_admin_form_validates_like_the_api(tenant):
    data = {
        "tenant": tenant.pk,
        "name": "LK",
        "trunk_phone": "+14155550123",
        "max_cps": 1,
        "max_channels": 2,
        "status": "active",
        "dialer": "livekit",
        "dialer_config": '{"url": "https://acme.livekit.cloud", "sip_trunk_id": "ST_abc"}',
        "dialer_secrets": "",
    }
    form = SipTrunkForm(data=data)
    assert not form.is_valid()
    assert form.errors["dialer_secrets"] == ["dialer_secrets.api_key is required"]

    secret_file = os.path.join(tempfile.gettempdir(), "lk-secret")  # a directory the tests' operator opened
    form = SipTrunkForm(
        data={**data, "dialer_secrets": json.dumps({"api_key": "APIabcdef123", "api_secret": f"file:{secret_file}"})}
    )
    assert form.is_valid(), form.errors
    trunk = form.save()
    assert trunk.dialer_secrets == {"api_key": "APIabcdef123", "api_secret": f"file:{secret_file}"}
    assert trunk.dialer_config["ringing_timeout"] == 30
    # Editing again shows the stored secrets masked only, and a blank box keeps them.
    edit = SipTrunkForm(instance=trunk, data={**data, "dialer_secrets": ""})
    assert "APIabcdef123" not in str(edit["dialer_secrets"])
    assert edit.is_valid(), edit.errors
    assert edit.save().dialer_secrets["api_key"] == "APIabcdef123"


def test_without_the_voice_packages_a_livekit_trunk_is_refused(admin_client, monkeypatch):
    from calls.dialers import livekit_client

    monkeypatch.setattr(livekit_client, "installed", lambda: False)
    response = create(admin_client, dialer_secrets=SECRETS)
    assert response.status_code == 400
    assert "requirements-voice.txt" in response.json()["details"]["dialer_config"][0]
