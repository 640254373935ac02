from __future__ import annotations

from django.core.management.base import BaseCommand

from tenants.encryption import reencrypt_all


class Command(BaseCommand):
    help = (
        "Re-encrypt every encrypted field with the first key of FIELD_ENCRYPTION_KEYS "
        "(run after putting a new key first; then the old keys can be dropped)."
    )

    def handle(self, *args, **options) -> None:
        counts = reencrypt_all()
        for label, count in sorted(counts.items()):
            self.stdout.write(f"{label}: {count} row(s) re-encrypted")
        self.stdout.write(f"Done: {sum(counts.values())} row(s).")
