"""rotate_encryption_keys: every encrypted field of every model re-encrypted with the new first key."""

from __future__ import annotations

from io import StringIO

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import call_command
from django.db import connection

from integrations.models import Connection, Credential, Endpoint
from tenants.models import Tenant

OLD = Fernet.generate_key().decode()
NEW = Fernet.generate_key().decode()
SECRET = "sk-live-rotation-0123456789"

# (model, encrypted columns) of the rows the fixture makes, in its order
COLUMNS = [
    (Tenant, ["webhook_secret", "llm_api_key"]),
    (Credential, ["secrets", "state"]),
    (Connection, ["default_headers", "signing_secret"]),
    (Endpoint, ["headers"]),
]


def raw_values(obj, columns) -> list[bytes]:
    table = connection.ops.quote_name(obj._meta.db_table)
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    pk = obj._meta.pk
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {names} FROM {table} WHERE {pk.column} = %s", [pk.get_db_prep_value(obj.pk, connection)]
        )
        return [bytes(v) for v in cursor.fetchone()]


@pytest.fixture
def encrypted_rows(settings, tenant, make_credential, make_endpoint, make_connection):
    # `tenant` (made by the shared fixture) was written with the suite's own key: keep it readable.
    settings.FERNET_KEYS = [OLD, *settings.FERNET_KEYS]
    owner = Tenant.objects.create(name="Rotating", slug="rotating", llm_api_key=SECRET)
    credential = make_credential("bearer", secrets={"token": SECRET}, owner=owner)
    Credential.objects.filter(pk=credential.pk).update(state={"refresh_token": SECRET})
    connection_ = make_connection(
        owner=owner, credential=credential, default_headers={"X-Key": SECRET}, sign_requests=True, signing_secret=SECRET
    )
    endpoint = make_endpoint(connection_, headers={"X-Other": SECRET})
    return [owner, credential, connection_, endpoint]


def read_all(objects) -> list:
    owner, credential, connection_, endpoint = (type(o).objects.get(pk=o.pk) for o in objects)
    return [
        owner.llm_api_key,
        credential.secrets,
        credential.state,
        connection_.default_headers,
        connection_.signing_secret,
        endpoint.headers,
    ]


EXPECTED = [SECRET, {"token": SECRET}, {"refresh_token": SECRET}, {"X-Key": SECRET}, SECRET, {"X-Other": SECRET}]


def test_rotation_re_encrypts_every_field_and_the_old_key_can_then_go(settings, encrypted_rows):
    old_keys = list(settings.FERNET_KEYS)
    before = {id(o): raw_values(o, cols) for o, (_, cols) in zip(encrypted_rows, COLUMNS, strict=True)}
    assert read_all(encrypted_rows) == EXPECTED

    settings.FERNET_KEYS = [NEW]
    with pytest.raises(InvalidToken):
        read_all(encrypted_rows)  # the rows really were written with the old key

    settings.FERNET_KEYS = [NEW, *old_keys]
    assert read_all(encrypted_rows) == EXPECTED
    out = StringIO()
    call_command("rotate_encryption_keys", "--batch-size", "2", stdout=out)

    settings.FERNET_KEYS = [NEW]
    assert read_all(encrypted_rows) == EXPECTED
    for obj, (_, columns) in zip(encrypted_rows, COLUMNS, strict=True):
        after = raw_values(obj, columns)
        for old_raw, new_raw in zip(before[id(obj)], after, strict=True):
            assert old_raw != new_raw
            Fernet(NEW.encode()).decrypt(new_raw)
            assert SECRET.encode() not in new_raw
    text = out.getvalue()
    assert "tenants.Tenant: 2 rows, 4 values re-encrypted, 0 already current" in text
    assert "integrations.Credential: 1 rows, 2 values re-encrypted, 0 already current" in text
    assert "integrations.Connection: 1 rows, 2 values re-encrypted" in text
    assert "integrations.Endpoint: 1 rows, 1 values re-encrypted" in text
    assert SECRET not in text


def test_rotation_is_idempotent(settings, encrypted_rows):
    settings.FERNET_KEYS = [NEW, *settings.FERNET_KEYS]
    call_command("rotate_encryption_keys", stdout=StringIO())
    raw = [raw_values(o, cols) for o, (_, cols) in zip(encrypted_rows, COLUMNS, strict=True)]

    out = StringIO()
    call_command("rotate_encryption_keys", stdout=out)

    assert "Total: 0 values re-encrypted, " in out.getvalue()
    assert "already current, 0 unreadable." in out.getvalue()
    assert raw == [raw_values(o, cols) for o, (_, cols) in zip(encrypted_rows, COLUMNS, strict=True)]


def test_a_value_no_key_can_read_is_reported_not_printed(settings, encrypted_rows):
    from django.core.management.base import CommandError

    settings.FERNET_KEYS = [NEW]  # the old key is gone before rotating

    out = StringIO()
    with pytest.raises(CommandError, match="could not be decrypted with any configured key"):
        call_command("rotate_encryption_keys", stdout=out)
    assert "unreadable with every key" in out.getvalue()
    assert SECRET not in out.getvalue()
