"""Admission counters of a SIP trunk: what `trigger_call` checks and takes when it admits a call.

The trunk row carries `live_calls`, `last_start` and `recent_starts`, the starts of the calls it
admitted during the last second counted by the hundredth of a second they fall in, rounded up
(`[[centisecond, count], …]`, sorted; at most ~100 pairs whatever the call rate or max_cps). Admitting
a call and ending one update them in the same transaction that writes the call, so admission reads one
row however many calls are live or started, and its cost does not grow with either:

- `admit_call(call, now)` — the fast path (PostgreSQL): one statement that checks the call against
  the database (`calls.validation.ADMISSIBLE_SQL`: agent, metadata keys, do-not-call list), takes a
  channel and a start by a conditional UPDATE when the trunk is the tenant's, active and within both
  limits, and inserts the call and its first event (and announces it to the worker's dispatcher by
  NOTIFY when `dispatcher.notify_channel()` names a channel); the calls queued for the trunk in this
  process meanwhile go in the same statement, all admitted or none (`_admit_in_turn`). False
  otherwise (and on SQLite), and the caller validates in full and decides under the trunk's lock;
- `start_time(trunk, now)`, `capacity_refusal(trunk, start)`, `take_channel(trunk, start)` — the same
  decision in Python on a locked row (refusals, with their message and Retry-After);
- `start_budget(trunk_id, now)` — how many calls the counters would admit now (campaign pacing);
- `release_channel(call)` — count a call that just became final (same transaction as its status);
- `reconcile_trunks()` — the periodic repair from the calls themselves, for counts changed outside
  these paths (a live call deleted, rows edited by hand).

A start is never earlier than the trunk's last one (`now`, or that start when another process's clock
ran ahead), so starts are in admission order and the pairs that left the window are at the ring's
head. A call is admitted while fewer than `max_cps` starts count in the second before its start; each
start counts from its real time until a second after the end of its hundredth, so no one-second
window ever holds more than max_cps starts (a call may be refused up to 10 ms early, never admitted
over the limit). Lock order is always call row → trunk row (ending) or trunk row → new call (admitting), never the
reverse, so the two cannot deadlock.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import (
    DEFAULT_DB_ALIAS,
    DataError,
    IntegrityError,
    OperationalError,
    connection,
    connections,
    transaction,
)
from django.db.models import Count, F, Field, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce, Greatest

from calls import dispatcher, validation
from calls.dialers import get_dialer
from calls.models import LIVE_STATUSES, ActiveStatus, Call, CallEvent, SipTrunk
from tenants import db, scoping, turns

MAX_CHANNELS_MESSAGE = "Trunk concurrency (max_channels) exhausted"
MAX_CPS_MESSAGE = "Trunk call rate (max_cps) exceeded"
MAX_RETRY_AFTER_SECONDS = 3600
WINDOW_SECONDS = 1.0
BUCKETS_PER_SECOND = 100  # the ring counts starts by hundredth of a second (SQL and Python alike)

_Given = tuple[tuple[str, Field], ...]  # (column, field): a call's fields its request gives

# The start is max(now, the trunk's last start). The ring counts the starts by the hundredth of a second
# they fall in, rounded up ([[centisecond, count], …], sorted), so a start counts as long as it really
# is in the window, and a hundredth longer at most: a call may be refused up to 10 ms early, never
# admitted over max_cps. The ring holds at most ~100 pairs whatever the call rate (a ring of one entry
# per start made every admission rewrite as many entries as the trunk's rate). Each admission drops
# up to two pairs that left the window from its head (a stale pair never changes the count) and counts
# its start in its hundredth.
_START = "GREATEST(%(now)s, COALESCE(last_start, 0))"
_CUT = "({start} - %(window)s)"
_BUCKET = "ceil({start} * {per_second})::bigint"
_IN_WINDOW = (
    "(SELECT COALESCE(sum((pair ->> 1)::int), 0) FROM jsonb_array_elements(recent_starts) AS pair"
    " WHERE (pair ->> 0)::float8 / {per_second} > {cut})"
)
_PRUNED = """CASE
            WHEN (recent_starts -> 1 ->> 0)::float8 / {per_second} <= {cut} THEN recent_starts - 0 - 0
            WHEN (recent_starts -> 0 ->> 0)::float8 / {per_second} <= {cut} THEN recent_starts - 0
            ELSE recent_starts
        END"""
_PG_UPDATE = (
    """
    UPDATE calls_siptrunk SET
        live_calls = live_calls + %(count)s,
        last_start = {start},
        recent_starts = (
            SELECT CASE WHEN (ring -> -1 ->> 0)::bigint = {bucket}
                THEN jsonb_set(ring, '{-1,1}', to_jsonb((ring -> -1 ->> 1)::int + %(count)s))
                ELSE ring || jsonb_build_array(jsonb_build_array({bucket}, %(count)s))
            END FROM (SELECT {pruned} AS ring) AS pruned
        )
    WHERE id = %(id)s AND tenant_id = %(tenant)s AND status = %(active)s
        AND live_calls + %(count)s <= max_channels AND {in_window} + %(count)s <= max_cps
        AND (
            SELECT count(*) FILTER (WHERE {admissible}) FROM request
            WHERE request.tenant_id = %(tenant)s AND request.sip_trunk_id = %(id)s
        ) = %(count)s
""".replace("{in_window}", _IN_WINDOW)
    .replace("{pruned}", _PRUNED)
    .replace("{bucket}", _BUCKET)
    .replace("{cut}", _CUT)
    .replace("{start}", _START)
    .replace("{per_second}", str(BUCKETS_PER_SECOND))
    .replace("{admissible}", validation.ADMISSIBLE_SQL)
    .replace("%(count)s", "CAST(%(count)s AS integer)")
)
# Built from the models' tables and columns and named placeholders only: every value is a parameter.
# `request` is the calls to admit, one row each, from one JSON parameter (its columns the call's given
# fields); the trunk admits all of them or none. The inserts select from the UPDATE's one row, so a
# trunk that does not admit writes nothing; each call's first event is made from the inserted call
# (its status, reported by the API at its creation).
_ONE_STATEMENT = (
    "WITH request AS (SELECT * FROM json_to_recordset(CAST(%(calls)s AS json)) AS request({request_columns})),"
    " admitted AS ({update} RETURNING last_start AS start),"
    " call AS (INSERT INTO {calls} ({call_columns}) SELECT {call_values} FROM admitted, request RETURNING {returning}),"
    " event AS (INSERT INTO {events} ({event_columns}) SELECT {event_values} FROM call)"
    " SELECT {started}{notify} FROM call"
)
# A call's wake-up for the worker's dispatcher (calls.dispatcher): delivered when the statement's
# transaction commits, never on rollback, and only for a call that was inserted (a row of `call`).
_NOTIFY = ", pg_notify(%(channel)s, CAST({id} AS text))"
# The fields of a call the admitting request gives; every other field of a new call holds its default,
# written into the statement as a constant (`_constant`), so a call is bound with these values only.
GIVEN_FIELDS = frozenset(
    {
        "id",
        "tenant",
        "agent",
        "sip_trunk",
        "phone_number",
        "metadata",
        "callback_url",
        "status",
        "created_at",
        "last_updated",
        "idempotency_key",
        "request_fingerprint",
        "callback_fields",
        "dialer_due_at",
    }
)
# The first event of an admitted call, from the inserted row.
_EVENT_VALUES = {
    "id": "gen_random_uuid()",
    "tenant": "call.{tenant}",
    "call": "call.{id}",
    "status": "call.{status}",
    "source": "'api'",
    "occurred_at": "call.{created_at}",
    "recorded_at": "call.{created_at}",
    "ignored": "false",
    "ignored_reason": "''",
    "detail": "'{{}}'::jsonb",
}


def admit_call(call: Call, now: datetime) -> bool:
    """Insert the accepted `call` (its `started_at` set here) and its first event if the call passes the
    database's checks and the trunk admits it at `now`; False, writing nothing, when the caller must
    validate in full and decide under the lock.

    PostgreSQL: one statement — the checks, the trunk's conditional UPDATE and both inserts as
    data-modifying CTEs — so outside a transaction the trunk's row is locked only while that statement
    runs and commits, with no round trip and no Python in between. The call names its agent and trunk
    by id: the statement admits it only when both are the tenant's, so the same-tenant invariant holds
    without reading them. Outside a transaction, calls that wait for their trunk's turn in this process
    go in one statement together (`_admit_in_turn`). Other databases (SQLite, whose IMMEDIATE
    transactions serialise every writer anyway): always False, the locked path decides.
    """
    database = connections[DEFAULT_DB_ALIAS]  # the thread's own, looked up once (not per attribute)
    if database.vendor != "postgresql":
        return False
    channel = dispatcher.notify_channel()
    pending = _Pending(call, _row(call), _epoch(now))
    if not database.in_atomic_block:
        started = _admit_in_turn(database, pending, channel)
    else:
        # A savepoint: the caller's transaction survives a failed insert.
        with transaction.atomic(using=database.alias):
            started = _execute(database, *_statement_and_params([pending], channel))
    if started is None:
        return False
    call.started_at = started
    call._state.adding, call._state.db = False, database.alias
    if channel is None:  # else the statement announced the call itself
        dispatcher.announce_on_commit(call)
    return True


class _Pending:
    """A call waiting for its trunk's turn, and what became of it (`outcome`): its start once admitted;
    _ALONE when the calls sent with it were not all admitted, or one of them failed on its own values
    (a repeated idempotency key), so it is sent by itself; _UNKNOWN when the connection it was sent on
    was lost (its row tells); an error to raise; _WAITING until it is sent."""

    __slots__ = ("call", "now", "outcome", "row")

    def __init__(self, call: Call, row: dict[str, Any], now: float) -> None:
        self.call, self.row, self.now = call, row, now
        self.outcome: Any = _WAITING


_WAITING, _ALONE, _UNKNOWN = object(), object(), object()
MAX_BATCH = 32

# Admissions to one trunk from one process take turns before they reach the database, and the calls
# that queued while a statement ran go together in the next one. The trunk's row lock serialises
# admissions there anyway: a session that waits for that lock costs PostgreSQL a lock wait, a wake-up
# and a recheck of the whole statement against the row's new version (EvalPlanQual), about twice the
# work of an admission that finds the row free; and one statement for several calls takes the row,
# writes its counters and waits for the commit's WAL flush once for all of them. The turns are each
# process's (tenants.turns), striped by trunk (a fixed set, whatever the number of trunks); queued per
# tenant and trunk. Another process's statement may wait on the row meanwhile: it is in PostgreSQL
# already when the row comes free, where a turn shared with it would first wait for two interpreters'
# GILs (tenants.turns says what that cost).
_TURNS = turns.Turns()
_QUEUES: dict[tuple[Any, Any], list[_Pending]] = {}
_QUEUES_LOCK = threading.Lock()


def _admit_in_turn(database: Any, pending: _Pending, channel: str | None) -> datetime | None:
    """The call's start once admitted outside a transaction, else None. The thread whose turn it is
    sends every call queued for the trunk (up to MAX_BATCH) in one statement, on its own connection; a
    call already sent when its thread's turn comes has its outcome."""
    call = pending.call
    key = (call.tenant_id, call.sip_trunk_id)
    with _QUEUES_LOCK:
        _QUEUES.setdefault(key, []).append(pending)
    with _TURNS.hold(call.sip_trunk_id):
        while pending.outcome is _WAITING:
            with _QUEUES_LOCK:
                queue = _QUEUES[key]
                batch = queue[:MAX_BATCH]
                del queue[:MAX_BATCH]
                if not queue:
                    del _QUEUES[key]
            _send(database, batch, channel)
        outcome = pending.outcome
        if outcome is _ALONE:
            _send(database, [pending], channel)
            outcome = pending.outcome
        if outcome is _UNKNOWN:
            return _recover(database, pending, channel)
    if isinstance(outcome, BaseException):
        raise copy.copy(outcome) from outcome.__cause__  # its own copy: others may raise it too
    return outcome


def _send(database: Any, batch: list[_Pending], channel: str | None) -> None:
    """Send `batch` (calls to one trunk) in one statement outside a transaction, without the
    connection's health check first (a round trip fewer per call: it commits by itself and the calls'
    ids are ours, so a lost connection is recovered by reading their rows), and set each outcome.
    Raises nothing: every call of the batch has left the queue, so its thread must find an outcome."""
    try:
        started = _execute(database, *_statement_and_params(batch, channel), health_check=False)
    except (IntegrityError, DataError) as error:  # one call's own values: alone, each says which
        outcome: Any = _ALONE if len(batch) > 1 else error
    except OperationalError as error:
        lost = db.connection_lost(database)
        if lost:
            database.close()
        outcome = _UNKNOWN if lost else error
    except Exception as error:  # each call's thread raises its copy
        outcome = error
    else:
        outcome = started if started is not None or len(batch) == 1 else _ALONE
    for each in batch:
        each.outcome = outcome


def _recover(database: Any, pending: _Pending, channel: str | None) -> datetime | None:
    """After a lost connection: the call's start if its row was written before, else the statement
    once more, by itself, on a new connection."""
    call = pending.call
    written = scoping.for_tenant(Call, call.tenant).filter(pk=call.pk).values_list("started_at", flat=True)
    started = written.first()
    if started is not None:
        return started
    return _execute(database, *_statement_and_params([pending], channel))


def _row(call: Call) -> dict[str, Any]:
    """The call's given fields, by column, as the statement's JSON parameter holds them."""
    _, given, constant = _statement(notify=False)
    for field, default in constant:
        if getattr(call, field.attname) != default:
            raise ValueError(f"an admitted call is inserted with its default {field.name}")
    return {column: field.get_prep_value(field.pre_save(call, True)) for column, field in given}


def _statement_and_params(batch: list[_Pending], channel: str | None) -> tuple[str, dict[str, Any]]:
    """The admission statement and its values for the calls of `batch` (one tenant's, to one trunk)."""
    sql, _, _ = _statement(notify=channel is not None)
    first = batch[0].call
    params: dict[str, Any] = {
        "calls": json.dumps([each.row for each in batch], default=_json_value, separators=(",", ":")),
        "count": len(batch),
        "id": first.sip_trunk_id,
        "tenant": first.tenant_id,
        "now": max(each.now for each in batch),
        "active": ActiveStatus.ACTIVE.value,
        "window": WINDOW_SECONDS,
    }
    if channel is not None:
        params["channel"] = channel
    return sql, params


def _json_value(value: Any) -> str:
    """A given field's value that JSON has no form of: a time (to the microsecond) or an id."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not a value of a call's given field")


def _execute(database: Any, sql: str, params: dict[str, Any], *, health_check: bool = True) -> datetime | None:
    """The start of the statement's calls when it admitted them (all of them, at one start), else None."""
    with db.prepared_cursor(database, health_check=health_check) as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else row[0]


@functools.cache
def _statement(*, notify: bool) -> tuple[str, _Given, tuple[tuple[Field, Any], ...]]:
    """The admission statement's text (announcing the calls when `notify`), the call's given fields
    by column (the JSON parameter's keys), and its fields written as their default (with that
    default); built once per process (the same text every time and for any number of calls, so
    PostgreSQL plans it once per connection)."""
    quote = connection.ops.quote_name
    column = {field.name: quote(str(field.column)) for field in Call._meta.local_concrete_fields}
    request_columns, call_columns, call_values, given, constant = [], [], [], [], []
    for field in Call._meta.local_concrete_fields:
        call_columns.append(column[field.name])
        if field.name == "started_at":
            call_values.append("to_timestamp(admitted.start)")
        elif field.name in GIVEN_FIELDS:
            given.append((str(field.column), field))
            request_columns.append(f"{column[field.name]} {field.db_type(connection)}")
            call_values.append(f"request.{column[field.name]}")
        else:
            constant.append((field, field.get_default()))
            call_values.append(_constant(field))
    event_fields = CallEvent._meta.local_concrete_fields
    if {field.name for field in event_fields} != set(_EVENT_VALUES):
        raise ImproperlyConfigured("calls.admission._EVENT_VALUES must name every column of CallEvent")
    sql = _ONE_STATEMENT.format(
        request_columns=", ".join(request_columns),
        update=_PG_UPDATE,
        calls=quote(Call._meta.db_table),
        events=quote(CallEvent._meta.db_table),
        call_columns=", ".join(call_columns),
        call_values=", ".join(call_values),
        returning=", ".join(column[name] for name in ("id", "tenant", "status", "created_at", "started_at")),
        event_columns=", ".join(quote(str(field.column)) for field in event_fields),
        event_values=", ".join(_EVENT_VALUES[field.name].format(**column) for field in event_fields),
        started=column["started_at"],
        notify=_NOTIFY.format(id=column["id"]) if notify else "",
    )
    return sql, tuple(given), tuple(constant)


def _constant(field: Field) -> str:
    """The SQL constant of `field`'s default, for the defaults a new call's fields hold (NULL, '', a
    whole number, an empty JSON object or list)."""
    default = field.get_default()
    if default is None and field.null:
        return "NULL"
    if default == "":
        return "''"
    if isinstance(default, int) and not isinstance(default, bool):
        return str(int(default))
    if default in ({}, []) and field.get_internal_type() == "JSONField":
        return f"'{json.dumps(default)}'::jsonb"
    raise ImproperlyConfigured(f"Call.{field.name}: give it in calls.admission.GIVEN_FIELDS (default {default!r})")


def _epoch(moment: datetime) -> float:
    # Whole microseconds, so a start read back as a datetime is exactly the trunk's last_start.
    return round(moment.timestamp(), 6)


def _ring(trunk: SipTrunk) -> list[tuple[int, int]]:
    """The trunk's [centisecond, count] pairs (anything else, e.g. an edit by hand, is ignored)."""
    pairs = []
    for pair in trunk.recent_starts or []:
        if (
            isinstance(pair, list)
            and len(pair) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in pair)
        ):
            pairs.append((pair[0], pair[1]))
    return sorted(pairs)


def _in_window(ring: list[tuple[int, int]], at: float) -> list[tuple[int, int]]:
    """The pairs whose starts count for max_cps at `at` (the second before it)."""
    return [(c, n) for c, n in ring if c / BUCKETS_PER_SECOND > at - WINDOW_SECONDS]


def start_time(trunk: SipTrunk, now: datetime) -> datetime:
    """When a call admitted on the locked `trunk` at `now` starts: never before its last start."""
    return datetime.fromtimestamp(max(_epoch(now), trunk.last_start or 0.0), tz=UTC)


def capacity_refusal(trunk: SipTrunk, start: datetime) -> tuple[str, int] | None:
    """Why `trunk` cannot start a call at `start` — (message, Retry-After seconds) — or None.

    Run under the trunk's lock, on the row just read. A start counts for max_cps during the one
    second after it (a sliding window, so no one-second window ever holds more than max_cps).
    """
    if trunk.live_calls >= trunk.max_channels:
        # Only on a refusal: when the oldest live call is expected to end.
        # (one entry of the partial index call_trunk_live_started)
        live = Call.objects.filter(sip_trunk=trunk, status__in=LIVE_STATUSES).order_by("started_at")
        oldest = live.values_list("started_at", flat=True).first() or start
        expected = timedelta(seconds=get_dialer(trunk.dialer).expected_duration(trunk.dialer_config))
        return MAX_CHANNELS_MESSAGE, _whole_seconds((oldest + expected - start).total_seconds())
    at = _epoch(start)
    if trunk.max_cps < 1:
        return MAX_CPS_MESSAGE, 1
    window = _in_window(_ring(trunk), at)
    counted = sum(n for _, n in window)
    if counted < trunk.max_cps:
        return None
    for centisecond, n in window:  # oldest first: when enough starts have left the window
        counted -= n
        if counted < trunk.max_cps:
            # their hundredth began 10 ms before it ends: that is when the starts themselves leave
            return MAX_CPS_MESSAGE, _whole_seconds((centisecond - 1) / BUCKETS_PER_SECOND + WINDOW_SECONDS - at)
    return MAX_CPS_MESSAGE, 1


def take_channel(trunk: SipTrunk, start: datetime) -> None:
    """Count a call started at `start` on the locked `trunk` (one UPDATE, same transaction)."""
    at = _epoch(start)
    buckets = dict(_in_window(_ring(trunk), at))
    bucket = math.ceil(at * BUCKETS_PER_SECOND)
    buckets[bucket] = buckets.get(bucket, 0) + 1
    ring: list[Any] = [[c, n] for c, n in sorted(buckets.items())]
    SipTrunk.objects.filter(pk=trunk.pk).update(live_calls=F("live_calls") + 1, recent_starts=ring, last_start=at)
    trunk.live_calls += 1
    trunk.recent_starts, trunk.last_start = ring, at


def start_budget(trunk_id: uuid.UUID | str, now: datetime) -> int:
    """How many calls the trunk could start at `now` by its counters (a pacing hint: `admit` decides)."""
    fields = ("live_calls", "recent_starts", "max_cps", "max_channels")
    trunk = SipTrunk.objects.filter(pk=trunk_id).only(*fields).first()
    if trunk is None:
        return 0
    recent = sum(n for _, n in _in_window(_ring(trunk), _epoch(now)))
    return max(0, min(trunk.max_cps - recent, trunk.max_channels - trunk.live_calls))


def release_channel(call: Call) -> None:
    """Count `call`, live until now, as ended: run in the transaction that makes it final."""
    SipTrunk.objects.filter(pk=call.sip_trunk_id).update(live_calls=Greatest(F("live_calls") - 1, Value(0)))


def reconcile_trunk(trunk_id: uuid.UUID | str) -> int:
    """Recount one trunk's live calls under its lock; returns the corrected count."""
    with transaction.atomic():
        trunk = SipTrunk.objects.select_for_update().filter(pk=trunk_id).first()
        if trunk is None:
            return 0
        # Under the trunk's lock no call is admitted; a call ending concurrently either committed
        # (not counted here) or will decrement after this commit (counted here): both end right.
        live = Call.objects.filter(sip_trunk=trunk, status__in=LIVE_STATUSES).count()
        if live != trunk.live_calls:
            SipTrunk.objects.filter(pk=trunk.pk).update(live_calls=live)
        return live


def reconcile_trunks() -> int:
    """Repair every trunk whose live-call counter differs from its calls; returns how many were off."""
    counted = (
        Call.objects.filter(sip_trunk=OuterRef("pk"), status__in=LIVE_STATUSES)
        .order_by()
        .values("sip_trunk")
        .annotate(n=Count("pk"))
        .values("n")
    )
    off = (
        SipTrunk.objects.annotate(counted=Coalesce(Subquery(counted, output_field=IntegerField()), 0))
        .filter(~Q(live_calls=F("counted")))
        .values_list("pk", flat=True)
    )
    ids = list(off)
    for trunk_id in ids:
        reconcile_trunk(trunk_id)
    return len(ids)


def _whole_seconds(seconds: float) -> int:
    return max(1, min(MAX_RETRY_AFTER_SECONDS, math.ceil(seconds)))
