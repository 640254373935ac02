"""Role checks for API views: each view says which role an action needs."""

from __future__ import annotations

from rest_framework import exceptions, permissions

from tenants.models import Role
from tenants.scoping import TenantContext

SAFE_ACTIONS = {"list", "retrieve", "metadata"}


def required_role(view, request) -> str:
    """The role a request needs: the view's `action_roles[action]`, else read_role or write_role."""
    action = getattr(view, "action", None)
    action_roles = getattr(view, "action_roles", {})
    if action in action_roles:
        return action_roles[action]
    method_roles = getattr(view, "method_roles", {})
    if request.method in method_roles:
        return method_roles[request.method]
    if request.method in permissions.SAFE_METHODS or action in SAFE_ACTIONS:
        return getattr(view, "read_role", Role.VIEWER)
    return getattr(view, "write_role", Role.ADMIN)


class HasTenantRole(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        ctx = request.auth
        if not isinstance(ctx, TenantContext):
            raise exceptions.NotAuthenticated()
        if ctx.tenant is None:
            raise exceptions.PermissionDenied(
                "Choose a tenant: your account belongs to several (or none); send the X-Switchboard-Tenant header"
            )
        needed = required_role(view, request)
        if not ctx.has_role(needed):
            raise exceptions.PermissionDenied(f"This action requires the {needed} role")
        return True
