"""The do-not-call list (SPEC §15): numbers a tenant must never call, whoever places the call.

It lives in `calls` because both the public call API and campaigns check it at dial time, and
`calls` must not import `campaigns`. Numbers are stored in E.164; `region` lets a CSV import read
national numbers (`98765 43210` with `IN`).
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass, field

import phonenumbers
from django.db import transaction

from calls.models import DoNotCallEntry
from tenants import scoping
from tenants.errors import DomainError
from tenants.models import Tenant

LISTED_MESSAGE = "phone_number is on the do-not-call list"
MAX_REASON_CHARS = 200
MAX_IMPORT_ROWS = 100_000
MAX_IMPORT_BYTES = 20 * 1024 * 1024
PHONE_HEADERS = ("phone_number", "phone", "number")


class DoNotCallError(DomainError):
    """A request about the list that cannot be done (code `invalid`), with the sentence to show."""


def normalise_number(value: object, region: str | None = None) -> str | None:
    """`value` in E.164 if it is a valid number (national numbers need `region`), else None."""
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        return None
    try:
        number = phonenumbers.parse(value.strip(), (region or None))
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def is_listed(tenant: Tenant | uuid.UUID | str, phone_number: str) -> bool:
    """True when `phone_number` (E.164) is on the tenant's do-not-call list."""
    tenant_id = tenant.pk if isinstance(tenant, Tenant) else tenant
    return DoNotCallEntry.objects.filter(tenant_id=tenant_id, phone_number=phone_number).exists()


def add_number(tenant: Tenant, phone_number: object, reason: object = "", *, region: str | None = None):
    """Put a number on the list (idempotent: an existing entry is returned unchanged) → (entry, created)."""
    normalised = normalise_number(phone_number, region)
    if normalised is None:
        raise DoNotCallError("phone_number must be a valid phone number in E.164 format")
    if reason is None:
        reason = ""
    if not isinstance(reason, str) or len(reason) > MAX_REASON_CHARS:
        raise DoNotCallError(f"reason must be text of at most {MAX_REASON_CHARS} characters")
    return DoNotCallEntry.objects.get_or_create(tenant=tenant, phone_number=normalised, defaults={"reason": reason})


@dataclass
class ImportReport:
    added: int = 0
    already_listed: int = 0
    rejected: list[dict] = field(default_factory=list)


def import_csv(tenant: Tenant, content: bytes, *, region: str | None = None, reason: str = "") -> ImportReport:
    """Add the numbers of a CSV file (header row with `phone_number`/`phone`/`number`, optional `reason`).

    Rows are accepted one by one (bad numbers are reported with their data line number, from 1); a
    file that cannot be read at all raises DoNotCallError and adds nothing.
    """
    reader = _reader(content)
    column = next((name for name in PHONE_HEADERS if name in (reader.fieldnames or [])), None)
    if column is None:
        raise DoNotCallError("the CSV file needs a phone_number column")
    report, numbers = ImportReport(), dict[str, str]()
    for line, record in enumerate(reader, start=1):
        if line > MAX_IMPORT_ROWS:
            raise DoNotCallError(f"at most {MAX_IMPORT_ROWS} rows per import")
        normalised = normalise_number(record.get(column), region)
        if normalised is None:
            report.rejected.append({"row": line, "error": "phone_number must be a valid phone number"})
            continue
        numbers.setdefault(normalised, (record.get("reason") or reason or "")[:MAX_REASON_CHARS])
    existing = set(
        scoping.for_tenant(DoNotCallEntry, tenant)
        .filter(phone_number__in=list(numbers))
        .values_list("phone_number", flat=True)
    )
    new = [DoNotCallEntry(tenant=tenant, phone_number=n, reason=r) for n, r in numbers.items() if n not in existing]
    with transaction.atomic():
        DoNotCallEntry.objects.bulk_create(new, batch_size=2000, ignore_conflicts=True)
    report.added, report.already_listed = len(new), len(existing)
    return report


def _reader(content: bytes) -> csv.DictReader:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DoNotCallError("the file must be UTF-8 text") from None
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    reader.fieldnames = [(name or "").strip().lower() for name in (reader.fieldnames or [])]
    return reader
