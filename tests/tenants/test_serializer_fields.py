"""Model serializers build their fields once per class (tenants.api.FieldsBuiltOnce); every instance
still gets fields of its own."""

from __future__ import annotations

from calls.serializers import AgentSerializer, SipTrunkSerializer


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
