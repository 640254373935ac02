"""The checks a call request needs the database for, made by the statement that admits the call
(calls.validation.ADMISSIBLE_SQL on PostgreSQL) or by the full validation (SQLite, and whenever that
statement did not admit): each refusal answers its exact SPEC message and writes nothing."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from calls import dnc, services
from calls.models import Agent, Call, CallEvent, DoNotCallEntry, SipTrunk
from calls.validation import CallRequestError, plain_call_request
from tests.calls.conftest import PHONE, call_body


def _refused(tenant, body) -> str:
    def written():
        return (
            Call.objects.count(),
            CallEvent.objects.count(),
            list(SipTrunk.objects.values_list("live_calls", "recent_starts")),
        )

    before = written()
    with pytest.raises(CallRequestError) as refused:
        services.trigger_call(tenant, body)
    assert written() == before
    return refused.value.message


@pytest.fixture
def foreign(other_tenant, make_agent, make_trunk):
    return make_agent(other_tenant), make_trunk(other_tenant)


def test_another_tenants_agent_or_trunk_is_not_found(tenant, agent, trunk, foreign):
    their_agent, their_trunk = foreign
    assert _refused(tenant, call_body(their_agent, trunk)) == "Agent not found"
    assert _refused(tenant, call_body(agent, their_trunk)) == "SIP trunk not found"


def test_an_inactive_agent_or_trunk_is_refused(tenant, agent, trunk, make_trunk):
    Agent.objects.filter(pk=agent.pk).update(status="inactive")
    assert _refused(tenant, call_body(agent, trunk)) == "Agent is not active"
    Agent.objects.filter(pk=agent.pk).update(status="active")
    SipTrunk.objects.filter(pk=trunk.pk).update(status="inactive")
    assert _refused(tenant, call_body(agent, trunk)) == "SIP trunk is not active"


def test_a_missing_metadata_key_is_refused(tenant, agent, trunk):
    body = call_body(agent, trunk, metadata={"due_date": "2026-07-01", "other": 1})
    assert _refused(tenant, body) == "metadata missing required keys: amount_due"


def test_a_number_on_the_do_not_call_list_is_refused(tenant, agent, trunk):
    DoNotCallEntry.objects.create(tenant=tenant, phone_number=PHONE)
    assert _refused(tenant, call_body(agent, trunk)) == dnc.LISTED_MESSAGE


def test_another_tenants_do_not_call_entry_does_not_refuse(tenant, other_tenant, agent, trunk):
    DoNotCallEntry.objects.create(tenant=other_tenant, phone_number=PHONE)
    assert services.trigger_call(tenant, call_body(agent, trunk)).accepted


@pytest.mark.parametrize(
    ("schema", "metadata", "admitted"),
    [
        ({}, {}, True),
        ({"fields": None}, {}, True),
        ({"fields": []}, {}, True),
        ({"fields": ["a"]}, {"a": None}, True),  # present, even as null
        ({"fields": [5]}, {"5": 1}, False),  # a schema edited by hand: 5 is not the key "5"
    ],
)
def test_the_schema_keys_are_read_as_the_full_validation_reads_them(
    tenant, trunk, make_agent, schema, metadata, admitted
):
    agent = make_agent(tenant)
    Agent.objects.filter(pk=agent.pk).update(input_schema=schema)
    body = call_body(agent, trunk, metadata=metadata)
    if admitted:
        assert services.trigger_call(tenant, body).accepted
    else:
        assert _refused(tenant, body) == "metadata missing required keys: 5"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one admitting statement is PostgreSQL's")
def test_a_valid_request_is_checked_and_admitted_in_one_statement_and_a_refusal_says_why(tenant, agent, trunk):
    def statements(queries) -> list[str]:  # without the test's own transaction's savepoints
        return [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]

    with CaptureQueriesContext(connection) as queries:
        assert services.trigger_call(tenant, call_body(agent, trunk)).accepted
    assert len(statements(queries)) == 1
    DoNotCallEntry.objects.create(tenant=tenant, phone_number=PHONE)
    with CaptureQueriesContext(connection) as queries, pytest.raises(CallRequestError, match="do-not-call"):
        services.trigger_call(tenant, call_body(agent, trunk))
    # the statement admitted nothing, then the full validation read the request to say why
    first, then = statements(queries)
    assert "UPDATE calls_siptrunk" in first and "FROM calls_agent agent" in then


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"phone_number": PHONE, "agent_id": "x", "sip_trunk_id": "y", "extra": 1},
        {"phone_number": "0800", "agent_id": "00000000-0000-0000-0000-000000000000"},
        {"phone_number": PHONE, "agent_id": 5, "sip_trunk_id": "00000000-0000-0000-0000-000000000000"},
        {"phone_number": PHONE, "agent_id": "00000000-0000-0000-0000-000000000000", "sip_trunk_id": None},
        {
            "phone_number": PHONE,
            "agent_id": "00000000-0000-0000-0000-000000000000",
            "sip_trunk_id": "00000000-0000-0000-0000-000000000000",
            "metadata": [],
        },
        {
            "phone_number": PHONE,
            "agent_id": "00000000-0000-0000-0000-000000000000",
            "sip_trunk_id": "00000000-0000-0000-0000-000000000000",
            "callback_url": "ftp://x",
        },
    ],
)
def test_a_body_failing_a_check_without_the_database_goes_to_the_full_validation(body):
    assert plain_call_request(body) is None
