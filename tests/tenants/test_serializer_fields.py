"""Model serializers build their fields once per class (tenants.api.FieldsBuiltOnce); every instance
still gets fields of its own."""

from __future__ import annotations

import pytest
from rest_framework import serializers

from calls import listing
from calls.models import Agent
from calls.serializers import AgentSerializer, SipTrunkSerializer
from tenants.api import StrictModelSerializer, reads_without_context


def test_each_serializer_binds_fields_of_its_own():
    # given two serializers of one class
    first, second = AgentSerializer(), AgentSerializer()
    # then they hold the same fields, as distinct objects bound to each serializer
    assert list(first.fields) == list(second.fields)
    assert "tools" in first.fields and "created_at" in first.fields
    for name in first.fields:
        assert first.fields[name] is not second.fields[name]
        assert first.fields[name].parent is first and second.fields[name].parent is second


def test_changing_one_serializers_field_leaves_the_others_alone():
    # given a serializer whose field is changed (as a view or __init__ may do)
    changed = AgentSerializer()
    changed.fields["name"].read_only = True
    changed.fields.pop("prompt")
    # then a later serializer of the class has the field as the model made it
    fresh = AgentSerializer()
    assert fresh.fields["name"].read_only is False and "prompt" in fresh.fields
    assert fresh.fields["created_at"].read_only is True  # Meta.read_only_fields still applied


def test_classes_keep_their_own_fields():
    assert "trunk_phone" in SipTrunkSerializer().fields and "trunk_phone" not in AgentSerializer().fields


def test_copies_of_a_tenant_scoped_relation_share_only_its_queryset():
    # given the tools field of two serializers (a tenant-scoped id field under a many-field)
    first, second = AgentSerializer().fields["tools"], AgentSerializer().fields["tools"]
    # then each has its own child field, bound to it, over one shared queryset template
    assert first.child_relation is not second.child_relation
    assert first.child_relation.parent is first and second.child_relation.parent is second
    assert first.child_relation.queryset is second.child_relation.queryset


def _agent(tenant, **fields):
    from calls.models import Agent

    return Agent.objects.create(tenant=tenant, name="Reader", agent_code="reader", **fields)


@pytest.mark.django_db
def test_reading_shares_fields_and_gives_what_a_serializer_of_its_own_gives(tenant):
    # given an agent with a tool id, read by two serializers: one that only reads, one with its own fields
    agent = listing.with_tool_ids(Agent.objects.filter(pk=_agent(tenant, input_schema={"fields": ["x"]}).pk)).get()
    reader, own = AgentSerializer(context={"tenant": tenant}), AgentSerializer(context={"tenant": tenant})
    assert own.fields  # materialised: the path DRF always takes
    # then both give the same representation, and the reader never built fields of its own
    assert reader.to_representation(agent) == own.to_representation(agent)
    assert "fields" not in reader.__dict__
    # and a list (one child serializer for every object) reads the same way
    many = AgentSerializer([agent, agent], many=True, context={"tenant": tenant})
    assert many.data == [own.to_representation(agent)] * 2 and "fields" not in many.child.__dict__


class ContextReadingSerializer(StrictModelSerializer):
    asked_by = serializers.SerializerMethodField()

    class Meta:
        model = Agent
        fields = ["id", "name", "asked_by", "created_at"]

    def get_asked_by(self, obj) -> str:
        return self.context["who"]


@pytest.mark.django_db
def test_fields_that_read_the_serializer_stay_its_own(tenant):
    # given a method field reading the context, read by two serializers with different contexts
    agent = _agent(tenant)
    first = ContextReadingSerializer(context={"who": "first"}).to_representation(agent)
    second = ContextReadingSerializer([agent], many=True, context={"who": "second"}).data
    # then each read its own context (the method field was bound to it, not shared)
    assert first["asked_by"] == "first" and second[0]["asked_by"] == "second"
    assert first["name"] == second[0]["name"] == "Reader"


def test_which_fields_may_be_shared_for_reading():
    fields = AgentSerializer().fields
    assert reads_without_context(fields["name"]) and reads_without_context(fields["created_at"])
    assert reads_without_context(fields["tools"])  # AgentToolsField says so; its child is a plain id
    assert not reads_without_context(serializers.SerializerMethodField())
    assert not reads_without_context(serializers.HyperlinkedRelatedField(view_name="x", read_only=True))
    assert not reads_without_context(serializers.CharField(default=serializers.CurrentUserDefault()))
    assert not reads_without_context(AgentSerializer())  # a nested serializer


@pytest.mark.django_db
def test_a_serializer_that_adjusts_its_fields_reads_with_them(tenant):
    # given a serializer whose field was changed before reading (as a view may do)
    agent = _agent(tenant)
    serializer = AgentSerializer()
    serializer.fields.pop("prompt")
    # then it reads with its own, changed fields
    assert "prompt" not in serializer.to_representation(agent)
    assert "prompt" in AgentSerializer().to_representation(agent)
