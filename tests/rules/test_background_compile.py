"""Issue #17: a tenant's rule set is compiled when its rules change, in the background, and the first
message after a change does not compile it; a rule deleted (or deactivated, or edited) never runs
once its change has committed, even on a process whose copy is still the previous version."""

from __future__ import annotations

import threading

import pytest
from django.core.cache import cache
from django.db import connection, connections
from django.db.models.signals import post_delete
from django.test.utils import CaptureQueriesContext

from rules import compiled, ruleset, tasks
from rules.definitions import parse_actions, replace_actions
from rules.engine import WITHDRAWN, evaluate_message
from rules.models import Conversation, Rule, RuleAction
from tests.rules.conftest import reply
from tests.support.worker import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = {"type": "regex", "pattern": "hello", "flags": "i"}


@pytest.fixture
def sent(monkeypatch):
    """The tasks sent on commit, recorded instead of sent (a worker is another process)."""
    names: list[tuple] = []

    def record(task_name, *args, countdown=None):
        names.append((task_name, *args))
        return True

    monkeypatch.setattr(ruleset.queue, "enqueue", record)
    return names


@pytest.fixture
def worker_runs_tasks(monkeypatch):
    """Tasks sent on commit run at once, eagerly, as a worker would run them."""

    def run_now(task_name, *args, countdown=None):
        assert task_name == tasks.compile_ruleset.name
        tasks.compile_ruleset.apply(args=[str(a) for a in args])
        return True

    monkeypatch.setattr(ruleset.queue, "enqueue", run_now)


@pytest.fixture
def stale_copies(monkeypatch, background):
    """This process never catches up by itself: it stands for a process whose copy is the old version."""
    monkeypatch.setattr(ruleset, "build_in_background", lambda tenant_id: None)


def changed_elsewhere(tenant, **fields) -> Rule:
    """A rule added by another process: its commit moved the shared token, nothing else ran here."""
    (rule,) = Rule.objects.bulk_create([Rule(tenant=tenant, **fields)])  # bulk_create sends no signal
    cache.set(ruleset.VERSION_KEY.format(tenant_id=tenant.pk), "changed-elsewhere", timeout=None)
    return rule


def current(tenant) -> bool:
    return ruleset.cached(tenant.pk, ruleset.version_of(tenant.pk)) is not None


def test_a_change_compiles_in_the_background_and_the_next_message_does_not(
    tenant, conversation, make_rule, background, sent
):
    # given a process that answers from its compiled copy
    make_rule(tenant, "Hello", trigger=HELLO, actions=[reply("hi")])
    wait_for(lambda: current(tenant), timeout=10)
    assert evaluate_message(conversation, "hello").reply == "hi"
    compiled_on_messages = ruleset.BUILDS["message"]
    # when a rule is added (its commit sends the compile task and starts this process's build)
    make_rule(tenant, "Bye", priority=1, trigger={"type": "regex", "pattern": "bye"}, actions=[reply("ciao")])
    assert ("rules.compile_ruleset", tenant.pk) in sent
    assert evaluate_message(conversation, "hello").reply == "hi"
    wait_for(lambda: current(tenant), timeout=10)
    # then no message compiled: the first one was answered at once, the next one sees the new rule
    assert evaluate_message(conversation, "bye").reply == "ciao"
    assert ruleset.BUILDS["message"] == compiled_on_messages
    assert ruleset.BUILDS["background"] >= 2


def test_a_process_catches_up_with_a_change_made_elsewhere_before_its_next_message(
    tenant, conversation, make_rule, background
):
    # given a process holding the tenant's rules
    make_rule(tenant, "Hello", priority=2, trigger=HELLO, actions=[reply("hi")])
    wait_for(lambda: current(tenant), timeout=10)
    compiled_on_messages = ruleset.BUILDS["message"]
    # when another process adds a rule
    changed_elsewhere(tenant, name="Bye", priority=1, trigger_type="regex", pattern="bye")
    # then this one builds the new version by itself, and the next message finds it
    wait_for(lambda: current(tenant), timeout=10)
    assert [rule.name for rule in ruleset.ruleset_for(tenant).rules] == ["Bye", "Hello"]
    assert evaluate_message(conversation, "hello").reply == "hi"
    assert ruleset.BUILDS["message"] == compiled_on_messages


def test_the_task_shares_the_version_so_another_process_builds_without_reading_the_rules(
    tenant, conversation, make_rule, worker_runs_tasks
):
    # given the compile task ran for the current version
    make_rule(tenant, "Hello", trigger=HELLO, actions=[reply("hi")])
    version = ruleset.version_of(tenant.pk)
    shared = cache.get(ruleset.SNAPSHOT_KEY.format(tenant_id=tenant.pk))
    assert shared["version"] == version
    assert [row[1] for row in shared["rows"]] == ["Hello"]
    # when a process without a copy builds it (here: this one, forgetting its own)
    ruleset.forget(tenant.pk)
    with CaptureQueriesContext(connection) as queries:
        built = ruleset.ruleset_for(tenant)
    # then it used the shared rows, not a query over the rules
    assert [rule.name for rule in built.rules] == ["Hello"]
    assert not [q["sql"] for q in queries.captured_queries if 'FROM "rules_rule"' in q["sql"]]


def _shared_version(key: str, version: str) -> dict | None:
    shared = cache.get(key)
    return shared if shared is not None and shared["version"] == version else None


def test_a_burst_of_commits_compiles_once_and_keeps_one_snapshot(tenant, make_rule, sent):
    # given three rules saved one after the other (each commit sends a compile, a second later)
    for n in range(3):
        make_rule(tenant, f"Rule {n}", priority=n)
    assert len(sent) == 3
    compiled_by_tasks = ruleset.BUILDS["task"]
    # when the worker runs them after the burst
    for task_name, tenant_id in sent:
        tasks.compile_ruleset.apply(args=[str(tenant_id)])
    # then the first compiled the version now current, the others found it shared
    assert ruleset.BUILDS["task"] == compiled_by_tasks + 1
    shared = cache.get(ruleset.SNAPSHOT_KEY.format(tenant_id=tenant.pk))
    assert shared["version"] == ruleset.version_of(tenant.pk)
    assert [row[1] for row in shared["rows"]] == ["Rule 0", "Rule 1", "Rule 2"]


def test_one_commit_sends_one_compile_however_many_rows_it_changed(tenant, make_rule, sent):
    rule = make_rule(tenant, "Steps", actions=[reply("one"), reply("two"), reply("three")])
    sent.clear()
    rule.delete()  # the rule and, by cascade, its three actions
    assert sent == [("rules.compile_ruleset", tenant.pk)]


@pytest.mark.parametrize("change", ["delete", "deactivate", "edit"])
def test_a_withdrawn_rule_never_runs_on_an_old_copy(tenant, make_rule, stale_copies, change):
    # given a process whose copy has a rule that is then deleted, deactivated or edited elsewhere
    conversation = Conversation.objects.create(tenant=tenant)
    promo = make_rule(tenant, "Promo", priority=1, trigger=HELLO, actions=[reply("old promo")])
    make_rule(tenant, "Fallback", priority=2, actions=[reply("fallback")])
    assert evaluate_message(conversation, "hello").reply == "old promo"
    if change == "delete":
        promo.delete()
    elif change == "deactivate":
        promo.is_active = False
        promo.save()
    else:
        promo.pattern = "bonjour"
        promo.save()
    # when the next message walks the old copy (this process has not rebuilt)
    assert ruleset.served(tenant)[1] is False
    result = evaluate_message(conversation, "hello")
    # then the rule is confirmed before it runs, found withdrawn, and the walk goes on
    assert result.reply == "fallback"
    assert [(t["name"], t["outcome"], t["reason"]) for t in result.to_dict()["rules"]] == [
        ("Promo", "skipped", WITHDRAWN),
        ("Fallback", "matched", "always matches"),
    ]


def test_an_action_change_moves_the_version(tenant, conversation, make_rule):
    rule = make_rule(tenant, "Hello", trigger=HELLO, actions=[reply("hi")])
    assert evaluate_message(conversation, "hello").reply == "hi"
    replace_actions(rule, parse_actions([reply("hi again")], tenant))  # the rule row itself is unchanged
    assert evaluate_message(conversation, "hello").reply == "hi again"


def test_messages_during_changes_and_builds_never_run_a_deleted_rule(tenant, make_rule, background):
    # given a rule answering while threads keep sending messages
    doomed = make_rule(tenant, "Doomed", priority=1, trigger=HELLO, actions=[reply("doomed")])
    make_rule(tenant, "Fallback", priority=9, actions=[reply("fallback")])
    deleted = threading.Event()
    stop = threading.Event()
    seen: list[tuple[bool, str | None]] = []
    errors: list[BaseException] = []

    def talk() -> None:
        conversation = Conversation.objects.create(tenant=tenant)
        try:
            while not stop.is_set():
                after_delete = deleted.is_set()
                seen.append((after_delete, evaluate_message(conversation, "hello").reply))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=talk) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: len(seen) >= 6, timeout=30)
        # when the rule is deleted and other rules change (each commit starts a build)
        doomed.delete()
        deleted.set()
        for n in range(3):
            make_rule(tenant, f"Other {n}", priority=5, trigger={"type": "regex", "pattern": f"other{n}"})
        wait_for(lambda: sum(after for after, _ in seen) >= 9, timeout=30)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    # then no message that started after the deletion committed ran it, and none failed
    assert not errors
    assert {text for after, text in seen if after} == {"fallback"}
    assert {text for after, text in seen if not after} <= {"doomed", "fallback"}


def test_a_build_compiles_no_pattern_until_a_message_needs_it(tenant, conversation):
    # given enough regex rules for the set prefilter (created in bulk: one build afterwards)
    Rule.objects.bulk_create(
        Rule(tenant=tenant, name=f"r{n}", priority=n, trigger_type="regex", pattern=f"word{n}\\b")
        for n in range(compiled.SET_THRESHOLD + 6)
    )
    rules = ruleset.ruleset_for(tenant).rules
    assert not [rule for rule in rules if "regex" in rule.__dict__]
    # when a dry run reports on every rule
    result = evaluate_message(conversation, "about word7 please", dry_run=True)
    # then only the pattern the set named was compiled, to confirm the match
    assert result.matched[0].name == "r7"
    assert [rule.name for rule in rules if "regex" in rule.__dict__] == ["r7"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite runs one writer at a time")
def test_a_reply_committed_while_its_rule_is_deleted_never_breaks_the_delete(tenant, make_rule):
    # given a reply being saved just when its rule's delete has unlinked the old messages
    rule = make_rule(tenant, "Bye", actions=[reply("bye")])
    conversation = Conversation.objects.create(tenant=tenant)
    replier = threading.Thread(target=lambda: (evaluate_message(conversation, "x"), connections.close_all()))

    def reply_meanwhile(sender, instance, **kwargs):
        # Django sends this after the messages' SET NULL and before the rule's own DELETE
        replier.start()
        replier.join(1.0)

    post_delete.connect(reply_meanwhile, sender=RuleAction, weak=False)
    try:
        rule.delete()
    finally:
        post_delete.disconnect(reply_meanwhile, sender=RuleAction)
    replier.join(30)
    # then the delete went through and the reply was kept, without the rule
    assert not Rule.objects.filter(pk=rule.pk).exists()
    assert list(conversation.messages.values_list("text", "rule_id")) == [("x", None), ("bye", None)]


def test_a_real_worker_compiles_a_committed_change_and_shares_it(tenant, make_rule, celery_worker_process):
    # when a rule's change commits (the worker listens on the queue the commit sends to)
    make_rule(tenant, "Hello", trigger=HELLO, actions=[reply("hi")])
    version = ruleset.version_of(tenant.pk)
    key = ruleset.SNAPSHOT_KEY.format(tenant_id=tenant.pk)
    # then the worker compiles that version and shares its rows in the shared cache
    shared = wait_for(lambda: _shared_version(key, version), timeout=60)
    assert [row[1] for row in shared["rows"]] == ["Hello"]
    assert shared["seconds"] >= 0
    assert "compiled the rules of tenant" in celery_worker_process.log()
