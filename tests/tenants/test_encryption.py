"""Encrypted fields and key rotation with `manage.py rotate_encryption_keys` (SPEC §3)."""

from __future__ import annotations

from io import StringIO

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import call_command
from django.db import connection

from tenants.encryption import reset_key_cache
from tenants.models import Tenant


def raw_column(tenant: Tenant, column: str) -> bytes:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {column} FROM tenants_tenant WHERE id = %s",
            [Tenant._meta.pk.get_db_prep_value(tenant.pk, connection)],
        )
        return bytes(cursor.fetchone()[0])


@pytest.fixture
def fernet_keys(settings):
    """Set FERNET_KEYS for the test (djfernet caches keys per field, so the cache is reset both ways)."""

    def use(*keys: str) -> None:
        settings.FERNET_KEYS = list(keys)
        reset_key_cache()

    yield use
    reset_key_cache()


def test_rotation_reencrypts_every_secret_with_the_new_first_key(tenant, fernet_keys, settings):
    # given a secret written under the old key
    old_key = settings.FERNET_KEYS[0]
    new_key = Fernet.generate_key().decode()
    tenant.llm_api_key = "sk-tenant-llm-key-1234"
    tenant.save()
    secret = tenant.webhook_secret
    # when the new key is put first and the rotation command runs
    fernet_keys(new_key, old_key)
    out = StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    # then both encrypted columns decrypt with the new key alone, and the old key can be dropped
    assert "tenants.Tenant: 1 row(s) re-encrypted" in out.getvalue()
    for column, plaintext in (("webhook_secret", secret), ("llm_api_key", "sk-tenant-llm-key-1234")):
        assert Fernet(new_key).decrypt(raw_column(tenant, column)).decode() == plaintext
        with pytest.raises(InvalidToken):
            Fernet(old_key).decrypt(raw_column(tenant, column))
    fernet_keys(new_key)
    reloaded = Tenant.objects.get(pk=tenant.pk)
    assert (reloaded.webhook_secret, reloaded.llm_api_key) == (secret, "sk-tenant-llm-key-1234")


def test_old_rows_still_read_while_both_keys_are_listed(tenant, fernet_keys, settings):
    old_key = settings.FERNET_KEYS[0]
    secret = tenant.webhook_secret
    fernet_keys(Fernet.generate_key().decode(), old_key)
    assert Tenant.objects.get(pk=tenant.pk).webhook_secret == secret
