"""List pagination (tenants.api.Pagination): the page, the count and the links, and the COUNT query
only when the first page cannot tell the total by itself."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from tenants.models import Role
from tenants.services import create_api_key


def count_queries(client, path: str) -> tuple[dict, list[str]]:
    """The body of GET `path` and the COUNT queries it sent."""
    with CaptureQueriesContext(connection) as captured:
        body = client.get(path).json()
    assert captured.captured_queries  # the capture works: the list itself was read
    return body, [q["sql"] for q in captured.captured_queries if "COUNT(" in q["sql"].upper()]


def test_a_short_first_page_is_counted_from_its_rows(owner_client):
    # given the tenant's four role keys
    # when the owner lists them on a page of 50
    body, counts = count_queries(owner_client, "/api/v1/api-keys")
    # then all four come back with their count, and no COUNT query was sent
    assert body["count"] == 4 and len(body["results"]) == 4
    assert body["next"] is None and body["previous"] is None
    assert counts == []


def test_a_full_first_page_is_counted_by_the_database(owner_client):
    # given four keys and a page size of 2
    body, counts = count_queries(owner_client, "/api/v1/api-keys?page_size=2")
    # then the count is the total (a COUNT query), and the next page is linked
    assert body["count"] == 4 and len(body["results"]) == 2
    assert body["next"] == "http://testserver/api/v1/api-keys?page=2&page_size=2"
    assert len(counts) == 1


def test_a_first_page_exactly_full_has_no_next_page(owner_client):
    body = owner_client.get("/api/v1/api-keys?page_size=4").json()
    assert body["count"] == 4 and len(body["results"]) == 4 and body["next"] is None


def test_later_pages_and_the_last_page(owner_client, tenant):
    # given five keys
    create_api_key(tenant, name="fifth", role=Role.VIEWER)
    second = owner_client.get("/api/v1/api-keys?page_size=2&page=2").json()
    last = owner_client.get("/api/v1/api-keys?page_size=2&page=last").json()
    # then page 2 holds two of them and the last page the fifth, each with the whole count
    assert second["count"] == 5 and len(second["results"]) == 2
    assert second["previous"] == "http://testserver/api/v1/api-keys?page_size=2"
    assert last["count"] == 5 and len(last["results"]) == 1 and last["next"] is None


def test_an_empty_list_is_one_empty_page(make_tenant, api_client_for):
    # given a tenant whose only key is the reader's, listing an empty collection
    client = api_client_for(make_tenant("Empty"), Role.OWNER)
    body = client.get("/api/v1/agents").json()
    assert body == {"count": 0, "next": None, "previous": None, "results": []}


def test_pages_past_the_end_or_malformed_are_404(owner_client):
    for page in ("2", "0", "-1", "abc", "1.5", "99999999999999999999999"):
        response = owner_client.get(f"/api/v1/api-keys?page={page}")
        assert response.status_code == 404, page
        assert response.json()["error"].startswith("Invalid page"), page
