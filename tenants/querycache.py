"""A tenant's list query compiled once per process instead of on every request.

Building and compiling the SQL of a list (the scoping filter, annotations, ordering) cost as much
CPU as running it. A list whose queryset depends on nothing but the tenant (the view says so) is
compiled the first time a page of that size and offset is read; later requests, of any tenant, reuse
the SQL with their tenant's id in place of the first one's. The rows are turned into objects by
Django's own ModelIterable, from the compiled query's column map, so annotations and converters
behave exactly as in a fresh query. A list is compiled twice the first time and kept only when both
builds give the same SQL and parameters, so a queryset with a moving value (a window ending `now()`)
is never frozen at its first request's value. Counting (only when a first page is full, or for another page)
still builds the query. The compiled text is run as a prepared statement (`tenants.db.read_rows`):
PostgreSQL parses and plans it once per connection, and it goes without a health check round trip.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connections, router
from django.db.models import Model, QuerySet
from django.db.models.query import ModelIterable

from tenants import db
from tenants.models import Tenant

MAX_SHAPES = 256  # (view, alias, slice) combinations kept per process


@dataclass(frozen=True)
class _Compiled:
    compiler: Any  # an SQLCompiler after as_sql(): select, klass_info, annotation_col_map are filled in
    sql: str
    params: tuple[Any, ...]
    tenant_positions: tuple[int, ...]


_compiled: dict[tuple[Any, ...], _Compiled | None] = {}
_compiled_lock = threading.Lock()


def forget_compiled() -> None:
    """Drop every compiled list query of this process (tests; a schema change needs a restart anyway)."""
    with _compiled_lock:
        _compiled.clear()


def _tenant_param(model: type[Model], tenant: Tenant, connection: Any) -> Any:
    """The tenant's id as the database receives it (a UUID on PostgreSQL, its hex on SQLite)."""
    field: Any = model._meta.get_field("tenant")
    return field.target_field.get_db_prep_value(tenant.pk, connection)


def _compile(queryset: QuerySet, tenant: Tenant, alias: str) -> _Compiled | None:
    state: Any = queryset  # Django's own bookkeeping of what the queryset was asked for
    plain_rows = state._iterable_class is ModelIterable and not state._prefetch_related_lookups
    if state._db is not None or not plain_rows or state._known_related_objects:
        return None  # its own database, values(), prefetching, known parents: read it as it says
    compiler = queryset.query.get_compiler(using=alias)
    try:
        sql, params = compiler.as_sql()
    except EmptyResultSet:
        return None
    tenant_param = _tenant_param(queryset.model, tenant, connections[alias])
    positions = tuple(i for i, value in enumerate(params) if value == tenant_param)
    if not sql or not positions:
        return None  # not the one tenant's rows a template can stand for
    compiler.connection = None  # bound again per use: connections are per thread
    return _Compiled(compiler, sql, tuple(params), positions)


def _same_query(compiled: _Compiled, rebuilt: QuerySet, alias: str) -> bool:
    """Whether a second build of the list compiles to the same SQL and parameters. A queryset whose
    parameters move between builds (a time window from `now()`, say) would otherwise be frozen at its
    first build's values for the life of the process."""
    try:
        sql, params = rebuilt.query.get_compiler(using=alias).as_sql()
    except EmptyResultSet:
        return False
    return sql == compiled.sql and tuple(params) == compiled.params


def _rows(compiled: _Compiled, model: type[Model], tenant: Tenant, alias: str) -> list[Model]:
    connection = connections[alias]
    params = list(compiled.params)
    tenant_param = _tenant_param(model, tenant, connection)
    for position in compiled.tenant_positions:
        params[position] = tenant_param
    compiler = copy.copy(compiled.compiler)  # shares the column map, read only
    compiler.connection = connection
    # The same text every time: prepared once per connection, sent without a health check first.
    rows = db.read_rows(connection, compiled.sql, params)
    compiler.execute_sql = lambda *args, **kwargs: [rows]  # the fetched rows, as one chunk
    # ModelIterable reads the query's compiler, the database and any known related objects (none).
    source = SimpleNamespace(
        db=alias, model=model, _known_related_objects={}, query=SimpleNamespace(get_compiler=lambda using: compiler)
    )
    return list(ModelIterable(source))  # type: ignore[arg-type]


class TenantList:
    """What a paginator reads for one tenant's list: slices from SQL compiled once per `shape`, and
    `count()` from the queryset (`build()`, built only when counted or first compiled). `build` must
    depend on the tenant alone and read through the default router (no `.using()`)."""

    ordered = True  # the queryset is ordered (Meta.ordering or its own); the paginator asks

    def __init__(self, shape: Any, model: type[Model], tenant: Tenant, build: Callable[[], QuerySet]) -> None:
        self.shape, self.model, self.tenant, self.build = shape, model, tenant, build
        self._queryset: QuerySet | None = None

    @property
    def queryset(self) -> QuerySet:
        if self._queryset is None:
            self._queryset = self.build()
        return self._queryset

    def count(self) -> int:
        return self.queryset.count()

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, index: slice) -> list[Model]:
        if not isinstance(index, slice) or index.step is not None:
            raise TypeError("a tenant list is read by slices")
        alias = router.db_for_read(self.model)
        key = (self.shape, alias, index.start, index.stop)
        with _compiled_lock:
            found = key in _compiled
            compiled = _compiled.get(key)
        if not found:
            compiled = _compile(self.queryset[index], self.tenant, alias)
            if compiled is not None and not _same_query(compiled, self.build()[index], alias):
                compiled = None  # it changes between builds (a clock, a random value): never reused
            with _compiled_lock:
                if len(_compiled) >= MAX_SHAPES:
                    _compiled.clear()
                _compiled[key] = compiled
        if compiled is None:
            return list(self.queryset[index])
        return _rows(compiled, self.model, self.tenant, alias)
