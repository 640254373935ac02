"""A tenant's list compiled once per process (tenants.querycache): every tenant still reads only its own
rows, with the same annotations, pages and counts as a query compiled afresh."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from calls.models import Agent
from calls.views import AgentViewSet
from integrations.models import Connection, Endpoint
from tenants import querycache


@pytest.fixture(autouse=True)
def _nothing_compiled():
    querycache.forget_compiled()
    yield
    querycache.forget_compiled()


def _agents(tenant, names: list[str], *, tool: Endpoint | None = None) -> list[Agent]:
    agents = [Agent.objects.create(tenant=tenant, name=name, agent_code=name.lower()) for name in names]
    for agent in agents if tool else ():
        agent.tools.add(tool)
    return agents


def _tool(tenant) -> Endpoint:
    owner = Connection.objects.create(tenant=tenant, name="Shop", base_url="https://shop.example")
    return Endpoint.objects.create(tenant=tenant, connection=owner, name="Orders", tool_name="orders", path="/o")


def _list(client, query: str = "") -> tuple[dict, list[dict]]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(f"/api/v1/agents{query}")
    assert response.status_code == 200, response.json()
    return response.json(), [q for q in captured.captured_queries if "calls_agent" in q["sql"]]


def test_each_tenant_reads_its_own_rows_through_sql_compiled_for_the_first(
    tenant, other_tenant, owner_client, other_client
):
    # given two tenants with agents (one with a tool), listed one after the other
    tool = _tool(tenant)
    _agents(tenant, ["Beta", "Alpha"], tool=tool)
    (theirs,) = _agents(other_tenant, ["Gamma"])
    mine, my_queries = _list(owner_client)
    body, their_queries = _list(other_client)
    # then the second tenant got its own agent only, in the first tenant's SQL with its own id
    assert [a["name"] for a in body["results"]] == ["Gamma"] and body["count"] == 1
    assert body["results"][0]["id"] == str(theirs.pk) and body["results"][0]["tools"] == []
    sql = their_queries[0]["sql"].replace("-", "")
    assert tenant.pk.hex not in sql
    # PostgreSQL binds the values of the prepared statement (logged with its placeholder), SQLite's
    # log shows them
    assert ('"tenant_id" = %s' in sql) if connection.vendor == "postgresql" else (other_tenant.pk.hex in sql)
    assert [a["name"] for a in mine["results"]] == ["Alpha", "Beta"]  # ordered by name, as Meta says
    assert all(a["tools"] == [str(tool.pk)] for a in mine["results"])
    assert len(querycache._compiled) == 1 and len(my_queries) == len(their_queries) == 1
    # and the first tenant, listed again, still reads the same as before
    assert _list(owner_client)[0] == mine


def test_reused_sql_gives_what_a_fresh_query_gives(tenant, owner_client):
    _agents(tenant, ["Alpha", "Beta"], tool=_tool(tenant))
    compiled, _ = _list(owner_client)
    AgentViewSet.list_compiled_once = False
    try:
        fresh, _ = _list(owner_client)
    finally:
        AgentViewSet.list_compiled_once = True
    assert compiled == fresh


def test_pages_and_counts_follow_each_tenant(tenant, other_tenant, owner_client, other_client):
    # given a full first page for one tenant and a short one for the other, at page_size 2
    _agents(tenant, ["A", "B", "C"])
    _agents(other_tenant, ["X"])
    first, _ = _list(owner_client, "?page_size=2")
    other, _ = _list(other_client, "?page_size=2")
    second, _ = _list(owner_client, "?page_size=2&page=2")
    # then counts and pages are each tenant's own
    assert (first["count"], [a["name"] for a in first["results"]], first["next"] is not None) == (3, ["A", "B"], True)
    assert (other["count"], [a["name"] for a in other["results"]]) == (1, ["X"])
    assert (second["count"], [a["name"] for a in second["results"]]) == (3, ["C"])
    # and a page past the end is refused as before
    response = owner_client.get("/api/v1/agents?page_size=2&page=3")
    assert response.status_code == 404


def test_a_list_without_a_tenant_id_in_its_sql_is_not_reused(tenant):
    # given a "list" whose SQL names no tenant (here: every agent), it is read afresh each time
    _agents(tenant, ["Alpha"])
    rows = querycache.TenantList("unscoped", Agent, tenant, lambda: Agent.objects.all())
    assert [a.name for a in rows[0:10]] == ["Alpha"]
    assert querycache._compiled == {("unscoped", "default", 0, 10): None}
    assert [a.name for a in rows[0:10]] == ["Alpha"] and rows.count() == 1


def test_a_reused_page_does_not_build_the_queryset(tenant, other_tenant):
    # given a page compiled for one tenant
    _agents(tenant, ["Alpha"])
    _agents(other_tenant, ["Omega"])
    built: list[str] = []

    def build(owner):
        built.append(owner.name)
        return Agent.objects.filter(tenant=owner)

    assert [a.name for a in querycache.TenantList("agents", Agent, tenant, lambda: build(tenant))[0:5]] == ["Alpha"]
    # then another tenant's read of that page needs no queryset, only counting builds it
    rows = querycache.TenantList("agents", Agent, other_tenant, lambda: build(other_tenant))
    # (the first tenant's page was built twice: once to compile, once to check it compiles the same)
    assert [a.name for a in rows[0:5]] == ["Omega"] and built == ["Acme", "Acme"]
    assert rows.count() == 1 and built == ["Acme", "Acme", "Globex"]


def test_a_list_whose_parameters_move_between_builds_is_not_reused(tenant):
    # given a list filtered on the clock (a window ending now): its parameters differ on every build
    from django.utils import timezone

    _agents(tenant, ["Alpha"])

    def rows() -> querycache.TenantList:  # one request's list
        return querycache.TenantList(
            "recent", Agent, tenant, lambda: Agent.objects.filter(tenant=tenant, created_at__lte=timezone.now())
        )

    assert [a.name for a in rows()[0:10]] == ["Alpha"]
    # then nothing was kept to reuse: a later request reads with its own clock
    assert querycache._compiled == {("recent", "default", 0, 10): None}
    _agents(tenant, ["Beta"])
    assert [a.name for a in rows()[0:10]] == ["Alpha", "Beta"]


@pytest.mark.parametrize(
    "build",
    [
        lambda tenant: Agent.objects.filter(tenant=tenant).prefetch_related("tools"),
        lambda tenant: Agent.objects.filter(tenant=tenant).values("name"),
        lambda tenant: Agent.objects.using("default").filter(tenant=tenant),
    ],
)
def test_querysets_django_reads_its_own_way_are_read_afresh(tenant, build):
    _agents(tenant, ["Alpha"], tool=_tool(tenant))
    rows = querycache.TenantList(("other", id(build)), Agent, tenant, lambda: build(tenant))
    assert len(rows[0:10]) == 1 and list(querycache._compiled.values()) == [None]
    if not isinstance(rows[0:10][0], dict) and hasattr(rows[0:10][0], "_prefetched_objects_cache"):
        assert rows[0:10][0]._prefetched_objects_cache["tools"]  # prefetched, as the queryset asked


@pytest.mark.django_db(transaction=True)
def test_threads_reading_the_same_compiled_page_each_get_their_tenants_rows(make_tenant):
    # given four tenants with agents of their own, read by four threads at once (gthread serves so)
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    tenants = [make_tenant(f"T{i}") for i in range(4)]
    for i, owner in enumerate(tenants):
        _agents(owner, [f"Agent{i}a", f"Agent{i}b"])

    def read(owner) -> set[tuple[str, ...]]:
        try:
            pages = set()
            for _ in range(25):
                rows = querycache.TenantList("threads", Agent, owner, lambda: Agent.objects.filter(tenant=owner))
                pages.add(tuple(sorted(agent.name for agent in rows[0:10])))
            return pages
        finally:
            connections.close_all()

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(read, tenants * 2))
    # then every read of a tenant gave exactly its own two agents
    assert results == [{(f"Agent{i}a", f"Agent{i}b")} for i in list(range(4)) * 2]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
def test_a_reused_list_is_a_statement_postgresql_prepared_once(tenant, other_tenant, owner_client, other_client):
    _agents(tenant, ["Alpha"])
    _agents(other_tenant, ["Omega"])
    for client in (owner_client, other_client, owner_client):
        _list(client)
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE statement LIKE %s", ['%FROM "calls_agent"%'])
        (statement,) = [row[0] for row in cursor.fetchall()]
    assert '"calls_agent"."tenant_id" = $1' in statement
