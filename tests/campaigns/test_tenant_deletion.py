"""A superuser can delete a whole tenant from the admin, its campaigns, rows and their calls included."""

from __future__ import annotations

import pytest

from calls.models import Call, DoNotCallEntry
from campaigns import lifecycle
from campaigns.models import Campaign, CampaignRow
from tenants.models import Tenant
from tests.campaigns.conftest import add_rows
from tests.campaigns.test_dispatch import ROW, dial_all

pytestmark = pytest.mark.django_db


def test_superuser_deletes_a_tenant_with_a_running_campaign(tenant, make_campaign, client, django_user_model):
    campaign = make_campaign()
    add_rows(campaign, ROW)
    lifecycle.start(campaign)
    dial_all(campaign)
    DoNotCallEntry.objects.create(tenant=tenant, phone_number="+14155552672")
    client.force_login(django_user_model.objects.create_superuser("root", password="pw-for-tests-1"))

    confirm = client.get(f"/admin/tenants/tenant/{tenant.pk}/delete/")
    response = client.post(f"/admin/tenants/tenant/{tenant.pk}/delete/", {"post": "yes"})

    assert confirm.status_code == 200 and b"permission to delete" not in confirm.content
    assert response.status_code == 302
    assert not Tenant.objects.filter(pk=tenant.pk).exists()
    assert not Campaign.objects.exists() and not CampaignRow.objects.exists()
    assert not Call.objects.exists() and not DoNotCallEntry.objects.exists()
