"""A rule and its actions are written in one transaction: a failure leaves neither half behind."""

from __future__ import annotations

from unittest import mock

import pytest
from django.db import DatabaseError

from rules import definitions
from rules.models import Rule, RuleAction

RULE = {
    "name": "Greeting",
    "trigger": {"type": "regex", "pattern": "hello"},
    "actions": [{"type": "REPLY_TEXT", "template": "Hi!"}],
}


def failing_actions(*args, **kwargs):
    raise DatabaseError("disk full")


def test_a_failure_writing_the_actions_leaves_no_rule_behind(owner_client):
    with (
        mock.patch.object(definitions, "_create_actions", failing_actions),
        pytest.raises(DatabaseError),
    ):
        owner_client.post("/api/v1/rules", RULE, format="json")

    assert not Rule.objects.exists()  # the rule was saved in a transaction of its own before


def test_a_failed_update_keeps_the_rule_and_its_actions_as_they_were(owner_client):
    rule_id = owner_client.post("/api/v1/rules", RULE, format="json").json()["id"]
    changed = {**RULE, "name": "Renamed", "actions": [{"type": "REPLY_TEXT", "template": "Bye"}]}

    with (
        mock.patch.object(definitions, "_create_actions", failing_actions),
        pytest.raises(DatabaseError),
    ):
        owner_client.put(f"/api/v1/rules/{rule_id}", changed, format="json")

    rule = Rule.objects.get(pk=rule_id)
    assert rule.name == "Greeting"
    assert list(RuleAction.objects.filter(rule=rule).values_list("template", flat=True)) == ["Hi!"]
