"""Production settings: refuse to start without secrets; HTTPS and secure cookies when DEBUG is off."""

from __future__ import annotations

import json
import subprocess

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from config import env
from tests.support.deploy import settings_process

PRINT_SETTINGS = (
    "import json, django; from django.conf import settings; django.setup(); "
    "print(json.dumps({name: getattr(settings, name) for name in ["
    "'DEBUG', 'SECURE_SSL_REDIRECT', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SECURE_HSTS_SECONDS', "
    "'SECURE_PROXY_SSL_HEADER', 'SECRET_KEY']}))"
)


def start(tmp_path, **overrides: str) -> subprocess.CompletedProcess:
    """Load config.settings in a fresh interpreter with a production-like environment."""
    return settings_process(tmp_path, PRINT_SETTINGS, **overrides)


def test_production_refuses_to_start_without_secret_key(tmp_path):
    result = start(tmp_path, FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode())
    assert result.returncode == 1
    assert "django.core.exceptions.ImproperlyConfigured: SECRET_KEY must be set when DEBUG is off" in result.stderr
    assert list(tmp_path.iterdir()) == []  # and no generated secret was written


def test_production_refuses_to_start_without_encryption_keys(tmp_path):
    result = start(tmp_path, SECRET_KEY="s" * 50)
    assert result.returncode == 1
    assert "ImproperlyConfigured: FIELD_ENCRYPTION_KEYS must be set when DEBUG is off" in result.stderr


def test_production_refuses_malformed_encryption_keys(tmp_path):
    result = start(tmp_path, SECRET_KEY="s" * 50, FIELD_ENCRYPTION_KEYS="not-a-fernet-key")
    assert result.returncode == 1
    assert "ImproperlyConfigured: FIELD_ENCRYPTION_KEYS must hold url-safe base64 Fernet keys" in result.stderr


def test_production_with_its_secrets_forces_https_and_secure_cookies(tmp_path):
    result = start(tmp_path, SECRET_KEY="s" * 50, FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode())
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "DEBUG": False,
        "SECURE_SSL_REDIRECT": True,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "SECRET_KEY": "s" * 50,
    }


def test_secrets_may_come_from_files(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-a-file-" + "x" * 40 + "\n")
    result = start(tmp_path, SECRET_KEY_FILE=str(secret_file), FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode())
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["SECRET_KEY"] == "from-a-file-" + "x" * 40


def test_an_unreadable_secrets_file_stops_the_app_with_a_clear_message(tmp_path):
    keys = Fernet.generate_key().decode()
    missing = start(tmp_path, SECRET_KEY_FILE=str(tmp_path / "absent"), FIELD_ENCRYPTION_KEYS=keys)
    folder = start(tmp_path, SECRET_KEY="s" * 50, FIELD_ENCRYPTION_KEYS_FILE=str(tmp_path))

    assert missing.returncode == 1
    assert (
        f"ImproperlyConfigured: SECRET_KEY_FILE names {tmp_path / 'absent'}, which cannot be read: "
        "No such file or directory" in missing.stderr
    )
    assert f"FIELD_ENCRYPTION_KEYS_FILE names {tmp_path}, which cannot be read: Is a directory" in folder.stderr


def test_development_generates_its_secrets_once_into_the_local_folder(tmp_path):
    first = start(tmp_path, DEBUG="true")
    second = start(tmp_path, DEBUG="true")
    assert first.returncode == 0, first.stderr
    settings = json.loads(first.stdout)
    assert settings["DEBUG"] is True and settings["SECURE_SSL_REDIRECT"] is False
    assert settings["SESSION_COOKIE_SECURE"] is False
    assert json.loads(second.stdout)["SECRET_KEY"] == settings["SECRET_KEY"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["field_encryption_keys", "metrics", "secret_key"]
    assert oct((tmp_path / "secret_key").stat().st_mode & 0o777) == "0o600"


def test_https_redirect_applies_to_every_path_but_the_health_check(db, settings):
    # given the production switch on
    settings.SECURE_SSL_REDIRECT = True
    client = Client()
    # then plain HTTP is redirected, HTTPS behind the proxy is not, and /healthz answers for load balancers
    redirect = client.get("/api/v1/api-keys")
    assert (redirect.status_code, redirect["Location"]) == (301, "https://testserver/api/v1/api-keys")
    assert client.get("/api/v1/api-keys", HTTP_X_FORWARDED_PROTO="https").status_code == 401
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize(("raw", "value"), [("true", True), ("1", True), ("off", False), ("", False)])
def test_env_bool(monkeypatch, raw, value):
    monkeypatch.setenv("SWB_FLAG", raw)
    assert env.env_bool("SWB_FLAG") is value


def test_env_helpers_fail_loudly_on_malformed_values(monkeypatch):
    monkeypatch.setenv("SWB_FLAG", "maybe")
    monkeypatch.setenv("SWB_NUMBER", "ten")
    with pytest.raises(ImproperlyConfigured, match="SWB_FLAG must be a boolean"):
        env.env_bool("SWB_FLAG")
    with pytest.raises(ImproperlyConfigured, match="SWB_NUMBER must be an integer"):
        env.env_int("SWB_NUMBER", 3)


def test_numbers_from_the_environment_fail_loudly_when_malformed(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from config.env import env_float, env_float_list

    monkeypatch.setenv("SWB_TEST_NUMBER", "2.5")
    monkeypatch.setenv("SWB_TEST_SCHEDULE", "10, 60,300")
    assert env_float("SWB_TEST_NUMBER", 1.0) == 2.5
    assert env_float("SWB_TEST_UNSET", 1.0) == 1.0
    assert env_float_list("SWB_TEST_SCHEDULE", [1.0]) == [10.0, 60.0, 300.0]
    monkeypatch.setenv("SWB_TEST_NUMBER", "fast")
    monkeypatch.setenv("SWB_TEST_SCHEDULE", "10,soon")
    with pytest.raises(ImproperlyConfigured, match="SWB_TEST_NUMBER must be a number"):
        env_float("SWB_TEST_NUMBER", 1.0)
    with pytest.raises(ImproperlyConfigured, match="SWB_TEST_SCHEDULE must be comma-separated numbers"):
        env_float_list("SWB_TEST_SCHEDULE", [1.0])
