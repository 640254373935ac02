"""The whole "Connect" dance in a real browser: admin → provider's consent page → back, connected."""

from __future__ import annotations

import pytest

from integrations.executor import execute
from tests.support.oauth_server import CLIENT_ID, CLIENT_SECRET


@pytest.mark.browser
def test_connect_in_the_admin_then_calls_succeed(
    transactional_db,
    page,
    admin_login,
    make_staff_user,
    tenant,
    make_credential,
    make_connection,
    make_endpoint,
    oauth_provider,
):
    make_staff_user("oauth-browser", tenant, role="admin")
    credential = make_credential(
        "oauth2_authorization_code",
        name="CRM",
        config=oauth_provider.authorization_code_config(),
        secrets={"client_secret": CLIENT_SECRET},
    )
    endpoint = make_endpoint(make_connection(credential=credential, base_url=oauth_provider.url("")), path="/api/me")
    admin_login("oauth-browser")

    page.goto("/admin/integrations/credential/")
    assert "Not connected" in page.inner_text("#result_list")
    page.goto(f"/admin/integrations/credential/{credential.pk}/change/")
    redirect_uri = page.inner_text("#oauth2-redirect-uri")
    page.click("#oauth2-connect")
    page.wait_for_url(f"{oauth_provider.authorize_url}?**")
    assert page.inner_text("#scopes") == "read"
    page.click("#approve")
    page.wait_for_url(f"**/admin/integrations/credential/{credential.pk}/change/")

    assert redirect_uri == f"{page.base_url}/admin/integrations/credential/oauth2/callback/"
    assert page.inner_text("#oauth2-status") == "Connected"
    assert "Connected: the credential now holds a token" in page.inner_text("ul.messagelist")
    page.goto("/admin/integrations/credential/")
    assert "Connected" in page.inner_text("#result_list")
    for token in oauth_provider.issued_tokens():
        assert token not in page.content()
    result = execute(endpoint)
    assert result.status == "success", result.error
    assert result.body["client_id"] == CLIENT_ID
    assert oauth_provider.token_count("authorization_code") == 1
    assert oauth_provider.token_count("refresh_token") == 0
