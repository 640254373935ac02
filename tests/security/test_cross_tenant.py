"""Standing tests: no reference between tenant-owned objects crosses tenants — in the models (every FK
and M2M), the admin (every form's choices, every list filter, the issue's attacks end to end) and the
REST API (every related field of every serializer). A new model, admin or serializer is covered
the day it is added, through the generic factory."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.admin.filters import RelatedFieldListFilter
from django.core.exceptions import ValidationError
from django.db import transaction
from django.test import Client
from django.urls import get_resolver
from rest_framework import serializers

from calls.models import Agent, Call, SipTrunk
from integrations.models import Connection, Credential, Endpoint
from rules.models import Rule, RuleAction
from tenants.admin import TenantScopedMixin
from tenants.invariants import is_tenant_owned
from tenants.models import Role
from tests.security.factory import build, fk_cases, m2m_cases, tenant_owned_models


def _case_id(case) -> str:
    return f"{case[0].__name__}.{case[1]}"


# --- the model invariant ----------------------------------------------------------------------------


@pytest.mark.parametrize("case", fk_cases(), ids=_case_id)
def test_every_fk_into_another_tenant_is_refused_on_save_and_clean(case, tenant, other_tenant):
    model, name = case
    field = model._meta.get_field(name)
    obj = model(**_values(model, tenant))
    setattr(obj, name, build(field.related_model, other_tenant))

    with pytest.raises(ValidationError) as on_clean:
        obj.full_clean()
    with pytest.raises(ValidationError) as on_save, transaction.atomic():
        obj.save()

    assert name in on_clean.value.message_dict
    assert list(on_save.value.message_dict) == [name]
    assert "of the same organisation" in on_save.value.message_dict[name][0]
    assert not model._default_manager.filter(pk=obj.pk).exists()


@pytest.mark.parametrize("case", fk_cases(), ids=_case_id)
def test_every_fk_within_the_tenant_is_accepted(case, tenant):
    model, name = case
    field = model._meta.get_field(name)
    obj = model(**_values(model, tenant))
    setattr(obj, name, build(field.related_model, tenant))

    obj.save()

    assert getattr(model._default_manager.get(pk=obj.pk), field.attname) is not None


@pytest.mark.parametrize("case", m2m_cases(), ids=_case_id)
def test_every_m2m_into_another_tenant_is_refused_either_way(case, tenant, other_tenant):
    model, name = case
    field = model._meta.get_field(name)
    mine, theirs = build(model, tenant), build(field.related_model, other_tenant)
    reverse_name = field.remote_field.get_accessor_name()

    with pytest.raises(ValidationError), transaction.atomic():
        getattr(mine, name).add(theirs)
    with pytest.raises(ValidationError), transaction.atomic():
        getattr(theirs, reverse_name).add(mine)
    getattr(mine, name).add(build(field.related_model, tenant))

    assert getattr(mine, name).count() == 1


def test_a_child_without_a_tenant_takes_its_parents(tenant):
    connection = build(Connection, tenant)

    endpoint = Endpoint.objects.create(connection=connection, name="e", tool_name="e")
    action = RuleAction.objects.create(rule=build(Rule, tenant), type="REPLY_TEXT", template="hi")

    assert endpoint.tenant_id == tenant.pk and action.tenant_id == tenant.pk


def _values(model, tenant) -> dict:
    from tests.security.factory import values_for

    return values_for(model, tenant)


# --- the admin ---------------------------------------------------------------------------------------


@pytest.fixture
def two_org_user(tenant, other_tenant, make_staff_user):
    """Admin of `tenant` (A), only a viewer of `other_tenant` (B): the issue's attacker."""
    user = make_staff_user("two-orgs", tenant, Role.ADMIN)
    user.memberships.create(tenant=other_tenant, role=Role.VIEWER)
    client = Client()
    client.force_login(user)
    return client


def _scoped_admins():
    return [
        (model, model_admin)
        for model, model_admin in admin.site._registry.items()
        if isinstance(model_admin, TenantScopedMixin) and is_tenant_owned(model)
    ]


def _admin_id(case) -> str:
    return case[0].__name__


def _choice_querysets(response):
    forms = [response.context["adminform"].form]
    for inline in response.context.get("inline_admin_formsets") or []:
        forms.extend(inline.formset.forms)
        forms.append(inline.formset.empty_form)
    for form in forms:
        for name, field in form.fields.items():
            if name == form._meta.model._meta.pk.name:
                continue  # Django's hidden pk of an inline row, checked against the formset's own rows
            queryset = getattr(field, "queryset", None)
            if queryset is not None and is_tenant_owned(queryset.model):
                yield f"{type(form).__name__}.{name}", queryset


@pytest.mark.parametrize("case", _scoped_admins(), ids=_admin_id)
def test_every_admin_form_offers_only_the_objects_own_tenants_choices(case, two_org_user, tenant, other_tenant):
    model, _ = case
    theirs = {pk for m in tenant_owned_models() for pk in [build(m, other_tenant).pk]}
    mine = build(model, tenant)
    base = f"/admin/{model._meta.app_label}/{model._meta.model_name}"

    pages = [two_org_user.get(f"{base}/{mine.pk}/change/"), two_org_user.get(f"{base}/add/")]

    for response in pages:
        if response.status_code == 403:  # no add for this kind (system-written records)
            continue
        assert response.status_code == 200
        if "adminform" not in response.context:
            continue
        for label, queryset in _choice_querysets(response):
            assert not set(queryset.values_list("pk", flat=True)) & theirs, label


@pytest.mark.parametrize("case", _scoped_admins(), ids=_admin_id)
def test_every_admin_list_filter_lists_only_the_users_tenants_objects(case, two_org_user, tenant, other_tenant):
    model, _ = case
    theirs = {build(m, other_tenant).pk for m in tenant_owned_models()}
    build(model, tenant)

    response = two_org_user.get(f"/admin/{model._meta.app_label}/{model._meta.model_name}/")

    if response.status_code == 403:  # an owner-only list (API keys)
        return
    assert response.status_code == 200
    for spec in response.context["cl"].filter_specs:
        if not isinstance(spec, RelatedFieldListFilter):
            continue
        offered = {str(pk) for pk, _label in spec.lookup_choices}
        assert not offered & {str(pk) for pk in theirs}, spec.title


def test_call_list_filters_name_no_other_tenants_agents_or_trunks(two_org_user, tenant, make_tenant):
    stranger = make_tenant("Initech")
    build(Call, tenant)
    build(Agent, stranger, name="Their secret agent")
    build(SipTrunk, stranger, name="Their secret trunk")

    page = two_org_user.get("/admin/calls/call/").content.decode()

    assert "Their secret agent" not in page and "Their secret trunk" not in page


def assert_form_refused(response, message: str, *created) -> None:
    """The admin showed the form again (200) saying `message`, and none of `created` (querysets) exists."""
    assert response.status_code == 200
    assert message in response.content.decode()
    for queryset in created:
        assert not queryset.exists(), queryset.model.__name__


def test_a_connection_in_a_cannot_use_bs_credential(two_org_user, tenant, other_tenant):
    theirs = build(Credential, other_tenant, type="bearer", secrets={"token": "b-secret-token-123"})
    data = {"name": "Stolen", "base_url": "https://api.example", "credential": str(theirs.pk), **CONNECTION_FORM}

    response = two_org_user.post("/admin/integrations/connection/add/", data)

    assert_form_refused(response, "Select a valid choice", Connection.objects.filter(name="Stolen"))


def test_a_rule_in_a_cannot_call_bs_endpoint_inline(two_org_user, tenant, other_tenant):
    theirs = build(Endpoint, other_tenant)
    data = {
        "name": "Exfiltrate",
        "priority": "10",
        "is_active": "on",
        "trigger_type": "always",
        "actions-TOTAL_FORMS": "1",
        "actions-INITIAL_FORMS": "0",
        "actions-0-position": "0",
        "actions-0-type": "CALL_API",
        "actions-0-endpoint": str(theirs.pk),
        "actions-0-on_error": "continue",
        "actions-0-params": "{}",
    }

    response = two_org_user.post("/admin/rules/rule/add/", data)

    assert_form_refused(
        response,
        "Select a valid choice",
        Rule.objects.filter(name="Exfiltrate"),
        RuleAction.objects.filter(endpoint=theirs),
    )


def test_a_viewer_of_b_cannot_create_an_endpoint_in_b(two_org_user, tenant, other_tenant):
    theirs = build(Connection, other_tenant)
    data = {"connection": str(theirs.pk), "name": "Planted", "tool_name": "planted", **ENDPOINT_FORM}

    response = two_org_user.post("/admin/integrations/endpoint/add/", data)

    assert_form_refused(response, "Select a valid choice", Endpoint.objects.filter(tool_name="planted"))


def test_an_agent_cannot_take_bs_endpoint_as_a_tool(two_org_user, tenant, other_tenant):
    theirs = build(Endpoint, other_tenant)
    data = {
        "name": "Teller",
        "agent_code": "teller",
        "status": "active",
        "language": "en-US",
        "input_schema": '{"fields": [], "sample_context": {}}',
        "tools": [str(theirs.pk)],
    }

    response = two_org_user.post("/admin/calls/agent/add/", data)

    assert response.status_code == 200
    assert not Agent.objects.filter(agent_code="teller").exists()


def test_a_superuser_choosing_a_tenant_still_cannot_mix_tenants(tenant, other_tenant, django_user_model):
    root = Client()
    root.force_login(django_user_model.objects.create_superuser("root", password="pw-for-tests-1"))
    theirs = build(Credential, other_tenant)
    data = {
        "tenant": str(tenant.pk),
        "name": "Mixed",
        "base_url": "https://api.example",
        "credential": str(theirs.pk),
        **CONNECTION_FORM,
    }

    response = root.post("/admin/integrations/connection/add/", data)

    assert_form_refused(
        response, "Choose a credential of the same organisation.", Connection.objects.filter(name="Mixed")
    )


def test_a_duplicate_membership_is_a_form_error(tenant, make_staff_user):
    owner = make_staff_user("owner", tenant, Role.OWNER)
    member = make_staff_user("member", tenant, Role.MEMBER)
    client = Client()
    client.force_login(owner)

    response = client.post("/admin/tenants/membership/add/", {"user": str(member.pk), "role": "viewer"})

    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert member.memberships.get().role == Role.MEMBER


CONNECTION_FORM = {
    "connect_timeout": "3",
    "read_timeout": "5",
    "total_deadline": "30",
    "max_response_bytes": "1000",
    "verify_tls": "on",
    "endpoints-TOTAL_FORMS": "0",
    "endpoints-INITIAL_FORMS": "0",
}
ENDPOINT_FORM = {"method": "GET", "body_type": "none", "error_policy": "continue", "burden": "conversational"}
ENDPOINT_FORM.update({"cache_ttl": "0", "query": "{}", "parameters": "[]", "response_mapping": "{}"})


# --- the REST API -----------------------------------------------------------------------------------


def _viewsets() -> list[type]:
    found: dict[str, type] = {}

    def walk(patterns) -> None:
        for pattern in patterns:
            if hasattr(pattern, "url_patterns"):
                walk(pattern.url_patterns)
            cls = getattr(getattr(pattern, "callback", None), "cls", None)
            if cls is not None and getattr(cls, "serializer_class", None) is not None:
                found[cls.__name__] = cls

    walk(get_resolver().url_patterns)
    return sorted(found.values(), key=lambda cls: cls.__name__)


def _related_fields(serializer, path=""):
    for name, field in serializer.fields.items():
        if isinstance(field, serializers.ListSerializer):
            field = field.child
        if isinstance(field, serializers.ManyRelatedField):
            field = field.child_relation
        if isinstance(field, serializers.BaseSerializer):
            yield from _related_fields(field, f"{path}{name}.")
        elif isinstance(field, serializers.RelatedField) and not field.read_only:
            yield f"{path}{name}", field


@pytest.mark.parametrize("viewset", _viewsets(), ids=lambda cls: cls.__name__)
def test_every_serializer_relation_accepts_only_the_requests_tenants_objects(viewset, tenant, other_tenant):
    theirs = {build(m, other_tenant).pk for m in tenant_owned_models()}
    serializer = viewset.serializer_class(context={"tenant": tenant})

    for label, field in _related_fields(serializer):
        queryset = field.get_queryset()
        if is_tenant_owned(queryset.model):
            assert not set(queryset.values_list("pk", flat=True)) & theirs, f"{viewset.__name__}: {label}"


def test_the_api_answers_a_model_level_refusal_with_400(owner_client, tenant, other_tenant):
    agent = build(Agent, tenant)
    theirs = build(Endpoint, other_tenant)

    response = owner_client.patch(f"/api/v1/agents/{agent.pk}", {"tools": [str(theirs.pk)]}, format="json")

    assert response.status_code == 400
    assert "error" in response.json()
    assert not agent.tools.exists()


def test_a_superuser_adding_a_rule_cannot_give_it_another_tenants_endpoint(tenant, other_tenant, django_user_model):
    root = Client()
    root.force_login(django_user_model.objects.create_superuser("root", password="pw-for-tests-1"))
    theirs = build(Endpoint, other_tenant)
    data = {
        "tenant": str(tenant.pk),
        "name": "Mixed rule",
        "priority": "10",
        "is_active": "on",
        "trigger_type": "always",
        "actions-TOTAL_FORMS": "1",
        "actions-INITIAL_FORMS": "0",
        "actions-0-position": "0",
        "actions-0-type": "CALL_API",
        "actions-0-endpoint": str(theirs.pk),
        "actions-0-on_error": "continue",
        "actions-0-params": "{}",
    }

    response = root.post("/admin/rules/rule/add/", data)

    # The action's own validation looks endpoints up in the rule's tenant; the invariant backs it.
    page = response.content.decode()
    assert response.status_code == 200
    assert "Unknown endpoint." in page or "Choose an endpoint of the same organisation." in page
    assert not Rule.objects.filter(name="Mixed rule").exists()
