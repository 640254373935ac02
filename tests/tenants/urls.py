"""A URLconf for tests of the base classes other apps build on: the real routes plus a probe resource."""

from __future__ import annotations

from django.urls import include, path
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from config.urls import urlpatterns as project_urlpatterns
from tenants.models import AuditEvent, Membership, Role
from tenants.routers import Router
from tenants.viewsets import TenantGenericViewSet, TenantModelViewSet


class ProbeSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = ["id", "object_repr"]


class ProbeViewSet(TenantGenericViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin):
    """Reads at viewer, a `test` action at member, writes at admin (the defaults every app inherits)."""

    queryset = AuditEvent.objects.filter(object_type="probe")
    serializer_class = ProbeSerializer
    action_roles = {"test": Role.MEMBER}
    audited = False

    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        return Response({"tested": str(self.get_object().pk)})


class MembershipProbeSerializer(serializers.ModelSerializer):
    class Meta:
        model = Membership
        fields = ["id", "user", "role"]


class MembershipProbeViewSet(TenantModelViewSet):
    """Full CRUD through the base viewset: the tenant is set on create and every write is audited."""

    queryset = Membership.objects.all()
    serializer_class = MembershipProbeSerializer


def boom(request):
    raise RuntimeError("kaboom")


router = Router()
router.register("probes", ProbeViewSet, basename="probe")
router.register("membership-probes", MembershipProbeViewSet, basename="membership-probe")

urlpatterns = [
    path("api/v1/test/", include(router.urls)),
    path("api/v1/boom", boom),
    path("integration/v1/boom", boom),
    *project_urlpatterns,
]
