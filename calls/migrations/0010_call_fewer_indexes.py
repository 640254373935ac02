"""Admission writes every index of calls_call: drop the three no query needs.

- call_trunk_started (sip_trunk, started_at): max_cps counts the trunk's ring now, not the calls; the
  refusal's oldest live start reads the partial call_trunk_live_started.
- The single-column indexes of the tenant and trunk foreign keys: call_tenant_created and
  call_trunk_status start with those columns, so lookups, counts and deletions use them instead.

The foreign keys stay as they are: only their indexes are dropped (an AlterField would drop and
re-add each constraint, re-checking every call under a lock).
"""

from django.db import migrations, models

_INDEXES = {"sip_trunk_id": "calls_call_sip_trunk_id_2ec697e2", "tenant_id": "calls_call_tenant_id_80e018fb"}


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0009_call_trunk_live_started"),
        ("tenants", "0003_api_key_rate_limits"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="call", name="call_trunk_started"),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="call",
                    name="sip_trunk",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=models.deletion.RESTRICT,
                        related_name="calls",
                        to="calls.siptrunk",
                    ),
                ),
                migrations.AlterField(
                    model_name="call",
                    name="tenant",
                    field=models.ForeignKey(
                        db_index=False, on_delete=models.deletion.CASCADE, related_name="+", to="tenants.tenant"
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{name}"', reverse_sql=f'CREATE INDEX "{name}" ON "calls_call" ("{column}")'
                )
                for column, name in _INDEXES.items()
            ],
        ),
    ]
