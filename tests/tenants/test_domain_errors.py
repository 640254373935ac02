"""Domain errors carry codes; the API layer alone turns them into statuses (tenants.api)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from tenants.api import STATUS_BY_CODE, exception_handler
from tenants.errors import DomainError, ErrorCode, NotFound
from tenants.scoping import get_for_tenant


def test_every_code_has_a_status():
    assert set(STATUS_BY_CODE) == set(ErrorCode)


def test_a_domain_error_answers_its_code_status_and_extra_fields():
    error = DomainError("Confirmation required", code=ErrorCode.CONFLICT, tool="refund")
    response = exception_handler(error, {})
    assert response.status_code == 409
    assert response.data == {"error": "Confirmation required", "tool": "refund"}


def test_a_domain_error_raised_in_a_view_reaches_the_client_as_its_status():
    class Refusing(APIView):
        authentication_classes = ()
        permission_classes = ()

        def get(self, request):
            raise DomainError("Too many requests, slow down", code=ErrorCode.RATE_LIMITED)

    response = Refusing.as_view()(APIRequestFactory().get("/api/v1/x"))
    assert response.status_code == 429
    assert response.data == {"error": "Too many requests, slow down"}


def test_get_for_tenant_raises_not_found_for_another_tenants_object(tenant, other_tenant, db):
    from tenants.models import ApiKey
    from tenants.services import create_api_key

    key, _raw = create_api_key(other_tenant, name="theirs", role="viewer")
    for pk in (key.pk, "not-a-uuid"):
        with pytest.raises(NotFound) as refused:
            get_for_tenant(ApiKey, tenant, pk=pk)
        assert refused.value.code == ErrorCode.NOT_FOUND
        assert refused.value.to_dict() == {"error": "Not found."}
