"""OpenAPI descriptions of our authentication classes (drf-spectacular extensions)."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.auth.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "swb_…",
            "description": "A tenant API key: `Authorization: Bearer swb_…`.",
        }


class TenantSessionScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.auth.TenantSessionAuthentication"
    name = "session"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": "sessionid",
            "description": "The admin's login session; X-Switchboard-Tenant picks a tenant when the user has several.",
        }


class StrictSerializerScheme(OpenApiSerializerExtension):
    """A strict serializer refuses unknown fields in a write: its request schema says so."""

    target_class = "tenants.api.StrictFieldsMixin"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction) -> dict:
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction == "request":
            schema["additionalProperties"] = False
        return schema


def drop_optional_trailing_slash(endpoints: list, **kwargs) -> list:
    """Our routes tolerate one trailing slash (`/?`); document them as written, without it."""
    return [
        (path.rstrip("/") if path_regex.endswith("/?$") else path, path_regex, method, callback)
        for path, path_regex, method, callback in endpoints
    ]
