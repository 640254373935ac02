"""`migrate` alone prepares the database: every model change has its migration, and the database
cache's table is one of them (tenants 0002), not a separate `createcachetable` step."""

from __future__ import annotations

from io import StringIO

import pytest
from django.conf import settings
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

CACHE_MIGRATION = ("tenants", "0002_database_cache_table")
BEFORE = ("tenants", "0001_initial")


def cache_table_exists() -> bool:
    return settings.DATABASE_CACHE_TABLE in connection.introspection.table_names()


def migrate_to(target: tuple[str, str]) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])


def test_every_model_change_has_its_migration(db):
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    assert "No changes detected" in out.getvalue()


def test_the_cache_is_the_table_the_migration_creates():
    assert settings.CACHES["default"]["LOCATION"] == settings.DATABASE_CACHE_TABLE


@pytest.mark.django_db(transaction=True)
def test_the_migration_creates_the_cache_table_and_unapplying_it_drops_it():
    try:
        migrate_to(BEFORE)
        assert not cache_table_exists()

        migrate_to(CACHE_MIGRATION)

        assert cache_table_exists()
        cache.set("deploy-check", "ok", 30)
        assert cache.get("deploy-check") == "ok"
    finally:
        migrate_to(CACHE_MIGRATION)


@pytest.mark.django_db(transaction=True)
def test_a_table_made_earlier_by_createcachetable_is_kept():
    try:
        migrate_to(BEFORE)
        call_command("createcachetable", verbosity=0)
        cache.set("made-before", "kept", 300)

        migrate_to(CACHE_MIGRATION)

        assert cache.get("made-before") == "kept"
    finally:
        migrate_to(CACHE_MIGRATION)
        cache.delete("made-before")
