"""Re-encrypt every encrypted value with the first key of FIELD_ENCRYPTION_KEYS.

Rotation: put a new key first (`FIELD_ENCRYPTION_KEYS=new,old`), restart, run this command, then
drop the old key. Every model field that is a Fernet-encrypted field (djfernet's, and
`tenants.fields.EncryptedJSONField`) of every installed app is found by itself — nothing to list.
Rows are handled in batches, each batch in one transaction with its rows locked; a value already
encrypted with the first key is left alone, so the command is idempotent and safe to run again after
an interruption. Only counts are printed, never a value.
"""

from __future__ import annotations

import logging

from cryptography.fernet import Fernet, InvalidToken
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from tenants.fields import encrypted_fields, reset_encryption_keys

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Re-encrypt every encrypted field with the first key of FIELD_ENCRYPTION_KEYS (prints counts only)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, default=500, help="Rows per transaction (default 500)")

    def handle(self, *args, batch_size: int, **options) -> None:
        reset_encryption_keys()
        totals = {"rows": 0, "rotated": 0, "current": 0, "unreadable": 0}
        for model, fields in encrypted_fields():
            counts = rotate_model(model, fields, batch_size=max(1, batch_size))
            for name, value in counts.items():
                totals[name] += value
            self.stdout.write(
                f"{model._meta.label}: {counts['rows']} rows, {counts['rotated']} values re-encrypted, "
                f"{counts['current']} already current"
                + (f", {counts['unreadable']} unreadable with every key" if counts["unreadable"] else "")
            )
        self.stdout.write(
            f"Total: {totals['rotated']} values re-encrypted, {totals['current']} already current, "
            f"{totals['unreadable']} unreadable."
        )
        logger.info("encryption keys rotated", extra=totals)
        if totals["unreadable"]:
            raise CommandError(f"{totals['unreadable']} values could not be decrypted with any configured key")


def rotate_model(model, fields, *, batch_size: int) -> dict[str, int]:
    counts = {"rows": 0, "rotated": 0, "current": 0, "unreadable": 0}
    manager = model._base_manager
    pks = list(manager.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(pks), batch_size):
        batch = pks[start : start + batch_size]
        with transaction.atomic():
            list(manager.select_for_update().filter(pk__in=batch).values_list("pk", flat=True))
            for pk, raws in _raw_rows(model, fields, batch):
                counts["rows"] += 1
                updates = _rotated(fields, raws, counts)
                if updates:
                    _write(model, pk, updates)
    return counts


def _raw_rows(model, fields, batch):
    """(pk, [ciphertext or None per field]) straight from the columns, undecrypted."""
    quote = connection.ops.quote_name
    pk_field = model._meta.pk
    columns = ", ".join(quote(f.column) for f in fields)
    marks = ", ".join(["%s"] * len(batch))
    sql = f"SELECT {quote(pk_field.column)}, {columns} FROM {quote(model._meta.db_table)} WHERE {quote(pk_field.column)} IN ({marks})"  # noqa: S608 - names quoted, values bound
    params = [pk_field.get_db_prep_value(pk, connection) for pk in batch]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for row in cursor.fetchall():
            yield row[0], row[1:]


def _rotated(fields, raws, counts: dict[str, int]) -> dict:
    """{field: new ciphertext} for the values not yet encrypted with the first key."""
    updates = {}
    for field, raw in zip(fields, raws, strict=True):
        if raw is None:
            continue
        token = bytes(raw)
        try:
            Fernet(field.fernet_keys[0]).decrypt(token)
        except InvalidToken:
            pass
        else:
            counts["current"] += 1
            continue
        try:
            updates[field] = field.fernet.rotate(token)
        except (InvalidToken, AttributeError):  # AttributeError: a single key (a Fernet, not a MultiFernet)
            counts["unreadable"] += 1
            continue
        counts["rotated"] += 1
    return updates


def _write(model, pk, updates: dict) -> None:
    quote = connection.ops.quote_name
    pk_field = model._meta.pk
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in updates)
    sql = f"UPDATE {quote(model._meta.db_table)} SET {assignments} WHERE {quote(pk_field.column)} = %s"  # noqa: S608
    binary = connection.Database.Binary  # type: ignore[attr-defined]  # the DB-API module of the backend
    params = [binary(value) for value in updates.values()]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, pk_field.get_db_prep_value(pk, connection)])
