"""Which compiled rule set a message uses: one per tenant and process, keyed by the tenant's rule version.

Evaluating a message must not reload and recompile thousands of rules, and the first message after
a change must not pay for compiling them either. The pieces:

- The version: a token in the shared cache that every committed change of a rule replaces
  (`rules_changed`, wired to Rule's save and delete signals). Each message reads that one key, so a
  change made in any process is seen by every process on its next message. When the token is
  missing (evicted, flushed) it is derived from the rules themselves (count and latest `updated_at`).
- Background compile: the commit of a change enqueues `rules.compile_ruleset` (rules.tasks, a second
  later so a burst of commits compiles once), which compiles the new version in a worker and shares
  its rows in the shared cache (`SNAPSHOT_KEY`: the latest compiled version of each tenant), and
  starts a build in a thread of the process that made the change. Compiled RE2 automata cannot
  cross processes: every web process builds its own copy, from the snapshot when it is of the
  version wanted (no 10,000-row read per process).
- Stale while revalidate, never a deleted rule: a live message that finds its process's copy older
  than the current version is evaluated on that copy while a background thread builds the new one.
  The engine confirms every rule it is about to run against the database (same `updated_at`, still
  active: rules.engine) in the query that loads its actions, so a rule deleted, deactivated or edited
  never runs once its change has committed; a rule added or edited elsewhere answers from the next
  message after that build (typically a fraction of a second). Dry runs, a process with no copy
  yet, and RULES_BUILD_IN_BACKGROUND=false wait for the current version instead.
- Other processes learn of a change without a message: each one's refresh thread compares the
  versions it holds with the shared tokens every REFRESH_SECONDS (one `get_many`) and builds the
  changed ones in the background, so even the first message after a change usually finds the new
  version compiled.
- Uncommitted changes: the thread whose open transaction changed a tenant's rules evaluates that
  tenant on a fresh, uncached build, so it sees its own change before it commits and a rollback
  leaves nothing behind.

`BUILDS` counts this process's builds by reason (`message`, `background`, `task`, `uncommitted`):
a message that had to compile shows up as `message`.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter, OrderedDict
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connections, transaction
from django.db.models import Count, Max

from rules import compiled
from rules.compiled import RuleSet
from rules.models import Rule, RuleAction
from tenants import queue
from tenants.models import Tenant

MAX_CACHED_TENANTS = 512
VERSION_KEY = "rules:ruleset-version:{tenant_id}"
# One snapshot per tenant (the latest compiled version's rows), never one per version: an import of
# thousands of rules, one commit each, must not leave thousands of copies in the shared cache.
SNAPSHOT_KEY = "rules:ruleset-rows:{tenant_id}"
# Which version the snapshot holds, apart from it: checking costs a few bytes, not the rows.
SNAPSHOT_VERSION_KEY = "rules:ruleset-rows-version:{tenant_id}"
SNAPSHOT_SECONDS = 24 * 3600
COMPILE_TASK = "rules.compile_ruleset"
# The compile task runs this long after the commit, so a burst of commits compiles once or twice.
COMPILE_DELAY_SECONDS = 1.0
# How often a process compares the versions of the tenants it holds with the shared tokens.
REFRESH_SECONDS = 1.0

logger = logging.getLogger(__name__)

BUILDS: Counter[str] = Counter()
_cache: OrderedDict[Any, tuple[str, RuleSet]] = OrderedDict()
_lock = threading.Lock()
_build_locks: dict[Any, threading.Lock] = {}
_building: set[Any] = set()  # tenants with a background build under way in this process
_refresher: threading.Thread | None = None
_local = threading.local()


def version_of(tenant_id: Any) -> str:
    """The tenant's current rule version (the shared token, derived from the rules when missing)."""
    key = VERSION_KEY.format(tenant_id=tenant_id)
    token = cache.get(key)
    if token is None:
        # Over all the tenant's rules, active or not: a deactivation is a save, which moves
        # updated_at; a deletion changes the count. `add` never replaces a token a change just wrote.
        stats = Rule.objects.filter(tenant_id=tenant_id).aggregate(count=Count("id"), latest=Max("updated_at"))
        latest = stats["latest"].isoformat() if stats["latest"] else "-"
        derived = f"rows:{stats['count']}:{latest}"
        cache.add(key, derived, timeout=None)
        token = cache.get(key) or derived
    return str(token)


def rule_saved_or_deleted(sender: type[Rule | RuleAction], instance: Rule | RuleAction, **kwargs: Any) -> None:
    """The post_save/post_delete receiver of Rule and RuleAction (rules.apps): a changed rule or
    action changes the tenant's version.

    A signal rather than a call in each writer, so the admin's bulk delete, the API, the demo and
    the services all move the version. The shared token moves only after the commit, so no other
    process can build the old rules under the new version; until then this thread builds afresh.
    One commit moves it once, however many rows it changed (a rule's delete cascades to its actions).
    """
    tenant_id = instance.tenant_id
    in_transaction = transaction.get_connection().in_atomic_block
    if in_transaction:
        _pending().add(tenant_id)
    transaction.on_commit(lambda: _committed(tenant_id, in_transaction))


def _committed(tenant_id: Any, in_transaction: bool) -> None:
    if in_transaction:
        if tenant_id not in _pending():
            return  # an earlier callback of the same commit moved the version
        _pending().discard(tenant_id)
    rules_changed(tenant_id)


def rules_changed(tenant_id: Any) -> None:
    """A committed change of the tenant's rules: a new version for every process, compiled in the
    background (the compile task, and a thread of this process with RULES_BUILD_IN_BACKGROUND)."""
    cache.set(VERSION_KEY.format(tenant_id=tenant_id), uuid.uuid4().hex, timeout=None)
    queue.enqueue(COMPILE_TASK, tenant_id, countdown=COMPILE_DELAY_SECONDS)
    if settings.RULES_BUILD_IN_BACKGROUND:
        build_in_background(tenant_id)


def _pending() -> set[Any]:
    pending: set[Any] = _local.__dict__.setdefault("pending", set())
    return pending


def _changed_here(tenant_id: Any) -> bool:
    """Whether this thread's open transaction changed the tenant's rules."""
    pending = _pending()
    if tenant_id not in pending:
        return False
    if transaction.get_connection().in_atomic_block:
        return True
    pending.discard(tenant_id)  # that transaction rolled back (a commit would have cleared it)
    return False


def ruleset_for(tenant: Tenant) -> RuleSet:
    """The tenant's compiled rules for the current version (built now if this process has none)."""
    return served(tenant, allow_stale=False)[0]


def served(tenant: Tenant, *, allow_stale: bool = True) -> tuple[RuleSet, bool]:
    """The rule set a live message walks, and whether it is the current version.

    While this process builds a newer version in the background (RULES_BUILD_IN_BACKGROUND), it
    serves the copy it has: not current, so the engine confirms each rule before running it.
    """
    if _changed_here(tenant.pk):
        BUILDS["uncommitted"] += 1
        return compiled.build(compiled.active_rows(tenant.pk)), True
    version = version_of(tenant.pk)
    entry = _entry(tenant.pk)
    if entry is not None and entry[0] == version:
        return entry[1], True
    if entry is not None and allow_stale and settings.RULES_BUILD_IN_BACKGROUND:
        build_in_background(tenant.pk)
        return entry[1], False
    return _build_and_store(tenant.pk, version, reason="message"), True


def _entry(tenant_id: Any) -> tuple[str, RuleSet] | None:
    with _lock:
        found = _cache.get(tenant_id)
        if found is not None:
            _cache.move_to_end(tenant_id)
        return found


def cached(tenant_id: Any, version: str) -> RuleSet | None:
    """This process's build of exactly `version`, if it has one."""
    found = _entry(tenant_id)
    return found[1] if found is not None and found[0] == version else None


def _build_and_store(tenant_id: Any, version: str, *, reason: str) -> RuleSet:
    with _lock:
        build_lock = _build_locks.setdefault(tenant_id, threading.Lock())
    with build_lock:  # one build per tenant at a time: a second caller finds the first one's result
        found = cached(tenant_id, version)
        if found is not None:
            return found
        # A change may have committed while this caller waited: build what is current now, never
        # an older version over a newer one.
        version = version_of(tenant_id)
        found = cached(tenant_id, version)
        if found is not None:
            return found
        built = compiled.build(_rows(tenant_id, version))
        BUILDS[reason] += 1
        _store(tenant_id, version, built)
    return built


def _rows(tenant_id: Any, version: str) -> list[compiled.Row]:
    # The compile task's snapshot of this very version when there is one, else the database. A
    # snapshot is read after its version was current, so it holds that version's rules or newer.
    if cache.get(SNAPSHOT_VERSION_KEY.format(tenant_id=tenant_id)) == version:
        shared = cache.get(SNAPSHOT_KEY.format(tenant_id=tenant_id))
        if shared is not None and shared["version"] == version:  # not replaced meanwhile
            return list(shared["rows"])
    return compiled.active_rows(tenant_id)


def _store(tenant_id: Any, version: str, built: RuleSet) -> None:
    global _refresher
    with _lock:
        _cache[tenant_id] = (version, built)
        _cache.move_to_end(tenant_id)
        while len(_cache) > MAX_CACHED_TENANTS:
            evicted, _ = _cache.popitem(last=False)
            _build_locks.pop(evicted, None)
        if _refresher is None and settings.RULES_BUILD_IN_BACKGROUND:
            _refresher = threading.Thread(target=_refresh, daemon=True, name="rules-refresh")
            _refresher.start()


def _refresh() -> None:
    """This process's watch over the versions of the tenants it holds (started with its first build,
    ended when it holds none): a change committed in another process is built here within about
    REFRESH_SECONDS, usually before this process's next message for that tenant."""
    global _refresher
    try:
        while True:
            time.sleep(REFRESH_SECONDS)
            with _lock:
                held = {
                    VERSION_KEY.format(tenant_id=tenant_id): (tenant_id, entry[0])
                    for tenant_id, entry in _cache.items()
                }
                if not held:
                    _refresher = None
                    return
            tokens = cache.get_many(list(held))
            for key, (tenant_id, version) in held.items():
                if tokens.get(key, version) != version:  # a missing token is the next message's to derive
                    build_in_background(tenant_id)
    except Exception:
        logger.warning("the rule-set refresh stopped; messages still see every change", exc_info=True)
        with _lock:
            _refresher = None
    finally:
        connections.close_all()


def build_in_background(tenant_id: Any) -> None:
    """Bring this process's copy up to the current version in a thread (one per tenant at a time)."""
    with _lock:
        if tenant_id in _building:
            return
        _building.add(tenant_id)
    threading.Thread(target=_background, args=(tenant_id,), daemon=True, name=f"rules-build-{tenant_id}").start()


def _background(tenant_id: Any) -> None:
    try:
        # Until the copy matches the version: a change committed during a build is built next.
        for _ in range(3):
            version = version_of(tenant_id)
            if cached(tenant_id, version) is not None:
                break
            _build_and_store(tenant_id, version, reason="background")
    except Exception:
        logger.warning("background rule-set build failed; the next message builds it", exc_info=True)
    finally:
        with _lock:
            _building.discard(tenant_id)
        connections.close_all()  # this thread's own connections


def compile_and_share(tenant_id: Any) -> float | None:
    """The compile task's work: compile the current version (the check that it builds, and its time)
    and share its rows under that version. The worker keeps no copy: it answers no messages.

    Returns the seconds the read and the build took, or None when the version was already shared.
    """
    version = version_of(tenant_id)
    if cache.get(SNAPSHOT_VERSION_KEY.format(tenant_id=tenant_id)) == version:
        return None  # an earlier run of a burst already compiled the version now current
    started = time.perf_counter()
    rows = compiled.active_rows(tenant_id)  # read after the version: that version's rules or newer
    compiled.build(rows)
    BUILDS["task"] += 1
    seconds = time.perf_counter() - started
    shared = {"version": version, "rows": rows, "seconds": seconds}
    cache.set(SNAPSHOT_KEY.format(tenant_id=tenant_id), shared, timeout=SNAPSHOT_SECONDS)
    cache.set(SNAPSHOT_VERSION_KEY.format(tenant_id=tenant_id), version, timeout=SNAPSHOT_SECONDS)
    return seconds


def forget(tenant_id: Any) -> None:
    """Drop this process's build of the tenant's rules."""
    with _lock:
        _cache.pop(tenant_id, None)


def clear_cache() -> None:
    with _lock:
        _cache.clear()
    _pending().clear()
