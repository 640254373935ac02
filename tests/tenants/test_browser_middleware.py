"""The browser session's middlewares (session, CSRF, user, second factor, messages) run for the admin's
session and stay idle on API requests that carry an Authorization header (tenants.middleware)."""

from __future__ import annotations

import pytest
from django.http import HttpResponse
from django.test import RequestFactory
from rest_framework.test import APIClient

from tenants import middleware
from tenants.models import Role, Tenant

CSRF_SECRET = "a" * 32  # a well-formed CSRF cookie value (Django's unmasked secret: 32 letters or digits)


def _chain(seen: dict):
    """The five middlewares in settings.MIDDLEWARE's order around a view that records what it was given."""

    def view(request):
        seen.update(
            session=hasattr(request, "session"),
            user=hasattr(request, "user"),
            messages=hasattr(request, "_messages"),
            csrf_cookie_read="CSRF_COOKIE" in request.META,
        )
        return HttpResponse("ok")

    handler = view
    for cls in reversed(
        [
            middleware.SessionMiddleware,
            middleware.CsrfViewMiddleware,
            middleware.AuthenticationMiddleware,
            middleware.OTPMiddleware,
            middleware.MessageMiddleware,
        ]
    ):
        handler = cls(handler)
    return handler


@pytest.mark.parametrize(
    ("path", "authorization", "browser"),
    [
        ("/api/v1/agents", "Bearer swb_anything", False),
        ("/integration/v1/calls", "Bearer swb_anything", False),
        ("/widget/v1/sessions", "Bearer swb_ws_token", False),
        ("/api/v1/agents", "Basic dXNlcjpwYXNz", False),  # DRF answers 401 from the header alone
        ("/api/v1/agents", None, True),
        ("/api/v1/agents", "", True),
        ("/api/v1/agents", "  \t ", True),  # blank: DRF ignores it and reads the session
        ("/admin/", "Bearer swb_anything", True),  # not an API path: the admin always has its session
        ("/healthz", "Bearer swb_anything", True),
    ],
)
def test_browser_middlewares_are_idle_only_on_api_requests_with_an_authorization_header(
    db, path, authorization, browser
):
    # given a request to `path` with or without an Authorization header
    extra = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    request = RequestFactory().get(path, **extra)
    request.COOKIES["csrftoken"] = CSRF_SECRET
    seen: dict = {}
    # when it passes the browser-session middlewares
    response = _chain(seen)(request)
    # then they ran (session, user, messages, the CSRF cookie read) exactly when a browser may be asking
    assert response.status_code == 200
    assert seen == {"session": browser, "user": browser, "messages": browser, "csrf_cookie_read": browser}


def _logged_in(tenant: Tenant, make_staff_user, username: str) -> APIClient:
    client = APIClient(enforce_csrf_checks=True)  # as in a browser
    client.force_login(make_staff_user(username, tenant, Role.ADMIN))
    return client


def test_a_session_write_with_its_csrf_token_is_accepted(tenant, make_staff_user):
    # given the admin's session, its CSRF cookie and the same token in the header, as the browser sends them
    client = _logged_in(tenant, make_staff_user, "ada")
    client.cookies["csrftoken"] = CSRF_SECRET
    # when it writes
    response = client.post("/api/v1/tenant/webhook-secret", HTTP_X_CSRFTOKEN=CSRF_SECRET)
    # then the session authenticates it and the write happens
    assert response.status_code == 200
    tenant.refresh_from_db()
    assert response.json()["secret"] == tenant.webhook_secret


def test_a_session_write_with_a_wrong_csrf_token_is_refused(tenant, make_staff_user):
    # given the admin's session and a CSRF header that does not match its cookie
    client = _logged_in(tenant, make_staff_user, "ada")
    client.cookies["csrftoken"] = CSRF_SECRET
    before = Tenant.objects.get(pk=tenant.pk).webhook_secret
    # when it writes
    response = client.post("/api/v1/tenant/webhook-secret", HTTP_X_CSRFTOKEN="b" * 32)
    # then 403 in the error shape, and nothing rotates
    assert response.status_code == 403
    assert response.json() == {"error": "CSRF Failed: CSRF token from the 'X-Csrftoken' HTTP header incorrect."}
    assert Tenant.objects.get(pk=tenant.pk).webhook_secret == before


def test_a_blank_authorization_header_leaves_the_session_and_its_csrf_check_in_force(tenant, make_staff_user):
    # given the admin's session on requests whose Authorization header is blank
    client = _logged_in(tenant, make_staff_user, "ada")
    client.credentials(HTTP_AUTHORIZATION="   ")
    before = Tenant.objects.get(pk=tenant.pk).webhook_secret
    # when it reads, then writes without a CSRF token
    read = client.get("/api/v1/agents")
    write = client.post("/api/v1/tenant/webhook-secret")
    # then the session authenticates the read and CSRF refuses the write
    assert read.status_code == 200
    assert write.status_code == 403
    assert write.json() == {"error": "CSRF Failed: CSRF cookie not set."}
    assert Tenant.objects.get(pk=tenant.pk).webhook_secret == before


def test_a_key_request_beside_a_session_cookie_touches_no_session(tenant, make_staff_user, api_client_for):
    # given an API-key request that also carries a logged-in session's cookie (a browser with both)
    client = api_client_for(tenant, Role.ADMIN)
    client.force_login(make_staff_user("both", tenant, Role.OWNER))
    client.cookies["csrftoken"] = CSRF_SECRET
    # when it writes without any CSRF token
    response = client.post("/api/v1/tenant/webhook-secret")
    # then the key authenticates it (no CSRF check for a key), and no cookie or Vary: Cookie comes back
    assert response.status_code == 200
    assert not response.cookies
    assert "Cookie" not in response.get("Vary", "")
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
