"""The compiled rule set is keyed by a version token in the shared cache (rules.ruleset): a warm
message reads one cache key instead of aggregating the tenant's rules, a committed change in any
process moves the token, and the process that made the change rebuilds in the background."""

from __future__ import annotations

import time

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from rules import ruleset
from rules.engine import evaluate_message
from rules.models import Rule
from tests.rules.conftest import reply
from tests.support.worker import wait_for

HELLO = {"type": "regex", "pattern": "hello", "flags": "i"}


def test_a_warm_message_does_not_aggregate_the_rules(tenant, conversation, make_rule):
    make_rule(tenant, "Hello", trigger=HELLO, actions=[reply("hi")])
    assert evaluate_message(conversation, "hello").reply == "hi"
    with CaptureQueriesContext(connection) as queries:
        assert evaluate_message(conversation, "hello again").reply == "hi"
    rule_reads = [q["sql"] for q in queries.captured_queries if 'FROM "rules_rule"' in q["sql"]]
    assert not [sql for sql in rule_reads if "COUNT(" in sql or "MAX(" in sql]


def test_a_change_in_this_process_is_seen_before_it_commits(tenant, conversation, make_rule):
    rule = make_rule(tenant, "Hello", trigger=HELLO, actions=[reply("hi")])
    assert evaluate_message(conversation, "hello").reply == "hi"
    rule.is_active = False
    rule.save()
    assert evaluate_message(conversation, "hello").reply is None


@pytest.mark.django_db(transaction=True)
def test_a_change_committed_elsewhere_moves_the_token_every_process_reads(tenant, conversation, make_rule):
    # given a rule set built and cached by this process
    rule = make_rule(tenant, "Hello", trigger=HELLO, actions=[reply("hi")])
    assert evaluate_message(conversation, "hello").reply == "hi"
    before = ruleset.version_of(tenant.pk)
    # when another process deactivates it (its commit moves the token; this process's copy is stale)
    Rule.objects.filter(pk=rule.pk).update(is_active=False)
    ruleset.rules_changed(tenant.pk)
    # then this process rebuilds on its next message
    assert ruleset.version_of(tenant.pk) != before
    assert evaluate_message(conversation, "hello").reply is None


@pytest.mark.django_db(transaction=True)
def test_a_saved_rule_is_compiled_in_the_background_before_the_next_message(
    tenant, conversation, make_rule, background
):
    make_rule(tenant, "Hello", trigger=HELLO, actions=[reply("hi")])
    # the commit of the save moved the token and started a build of the new version
    wait_for(lambda: ruleset.cached(tenant.pk, ruleset.version_of(tenant.pk)) is not None, timeout=10, interval=0.05)
    built = ruleset.cached(tenant.pk, ruleset.version_of(tenant.pk))
    assert [rule.name for rule in built.rules] == ["Hello"]
    assert evaluate_message(conversation, "hello").reply == "hi"
    assert ruleset.ruleset_for(tenant) is built  # the message used the background build


@pytest.mark.django_db(transaction=True)
def test_without_a_token_the_version_comes_from_the_rules(tenant, conversation, make_rule):
    rule = make_rule(tenant, "Hello", trigger=HELLO, actions=[reply("hi")])
    assert evaluate_message(conversation, "hello").reply == "hi"
    # the shared cache was flushed, and a rule changed without a signal (a bulk update)
    cache.clear()
    time.sleep(0.01)
    Rule.objects.filter(pk=rule.pk).update(is_active=False, updated_at=rule.updated_at.replace(year=2099))
    assert ruleset.version_of(tenant.pk).startswith("rows:1:")
    assert evaluate_message(conversation, "hello").reply is None
