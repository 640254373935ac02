"""The database cache's table, so `migrate` alone prepares everything the app needs.

Without REDIS_URL the shared cache (OAuth tokens, rate limits, locks, the worker heartbeat) is a
database table; it used to exist only where `createcachetable` had been run by hand (`make run`, the
test runner), so a deploy that followed the README answered 500 on its first widget session. The table
is created even when REDIS_URL is set, so switching the cache back to the database needs no extra step.
An existing table (from an earlier `createcachetable`) is left as it is.
"""

from django.conf import settings
from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor):
    call_command(
        "createcachetable", settings.DATABASE_CACHE_TABLE, database=schema_editor.connection.alias, verbosity=0
    )


def drop_cache_table(apps, schema_editor):
    schema_editor.execute(f"DROP TABLE IF EXISTS {schema_editor.quote_name(settings.DATABASE_CACHE_TABLE)}")


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]

    operations = [migrations.RunPython(create_cache_table, drop_cache_table, elidable=False)]
