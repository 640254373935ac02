"""PostgreSQL: a trunk's ring of recent starts is stored uncompressed.

Every admission rewrites the ring (calls.admission); at a few hundred starts a second it outgrows the
row and PostgreSQL compressed it on every write and decompressed it on every read (pglz was about a
sixth of the database's CPU per admitted call under load). EXTERNAL keeps it out of line, uncompressed;
toast_tuple_target lets a ring of up to ~8 kB stay in the row. Other databases: nothing to do.
"""

from django.db import migrations

FORWARD = (
    "ALTER TABLE calls_siptrunk ALTER COLUMN recent_starts SET STORAGE EXTERNAL",
    "ALTER TABLE calls_siptrunk SET (toast_tuple_target = 8160)",
)
BACKWARD = (
    "ALTER TABLE calls_siptrunk ALTER COLUMN recent_starts SET STORAGE EXTENDED",
    "ALTER TABLE calls_siptrunk RESET (toast_tuple_target)",
)


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for statement in statements:
                schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("calls", "0010_call_fewer_indexes")]

    operations = [migrations.RunPython(_run(FORWARD), _run(BACKWARD))]
