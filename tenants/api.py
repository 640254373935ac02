"""REST conventions shared by every app: the error shape, pagination, strict writes.

Kept free of DRF views/generics: DRF imports this module from its settings (pagination, handler).
"""

from __future__ import annotations

import copy
import logging
from typing import Any, ClassVar, TypeVar

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.paginator import Paginator
from django.http import Http404, JsonResponse
from redis import ConnectionError as RedisConnectionError
from redis import TimeoutError as RedisTimeoutError
from rest_framework import exceptions, pagination, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from tenants.auth import INVALID_KEY_MESSAGE
from tenants.errors import DomainError, ErrorCode, ServiceUnavailable
from tenants.scoping import for_tenant
from tenants.validation import taken_in_tenant

logger = logging.getLogger(__name__)
R = TypeVar("R", Response, JsonResponse)

API_PATH_PREFIXES = ("/api/", "/integration/", "/widget/", "/hooks/")


def error_body(message: str, details: Any = None) -> dict:
    body: dict[str, Any] = {"error": message}
    if details:
        body["details"] = details
    return body


def _first_message(details: Any) -> str:
    if isinstance(details, dict):
        for field, value in details.items():
            inner = _first_message(value)
            return inner if field == "non_field_errors" else f"{field}: {inner}"
    if isinstance(details, list) and details:
        return _first_message(details[0])
    return str(details)


def _validation_body(detail: Any) -> dict:
    details = (
        detail if isinstance(detail, dict) else {"non_field_errors": detail if isinstance(detail, list) else [detail]}
    )
    return error_body(_first_message(details), details)


# How the API answers each domain error code (tenants.errors).
STATUS_BY_CODE: dict[ErrorCode, int] = {
    ErrorCode.INVALID: status.HTTP_400_BAD_REQUEST,
    ErrorCode.UNAUTHENTICATED: status.HTTP_401_UNAUTHORIZED,
    ErrorCode.FORBIDDEN: status.HTTP_403_FORBIDDEN,
    ErrorCode.NOT_FOUND: status.HTTP_404_NOT_FOUND,
    ErrorCode.CONFLICT: status.HTTP_409_CONFLICT,
    ErrorCode.TOO_LARGE: status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    ErrorCode.UNSUPPORTED_FORMAT: status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
    ErrorCode.MISMATCH: status.HTTP_422_UNPROCESSABLE_ENTITY,
    ErrorCode.RATE_LIMITED: status.HTTP_429_TOO_MANY_REQUESTS,
    ErrorCode.UNAVAILABLE: status.HTTP_503_SERVICE_UNAVAILABLE,
}

# The shared cache (Redis) unreachable or not answering within REDIS_TIMEOUT_SECONDS, wherever a request
# met it: answered as ServiceUnavailable (503 with Retry-After), not as a 500. Its error replies are
# bugs, and stay 500s.
UNAVAILABLE_ERRORS = (RedisConnectionError, RedisTimeoutError)


def status_for(error: DomainError) -> int:
    return STATUS_BY_CODE[error.code]


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF errors, domain errors (and Django's 404/403/413) as `{"error": "...", "details": {...}}`."""
    if isinstance(exc, UNAVAILABLE_ERRORS):
        exc = unavailable(exc)
    if isinstance(exc, DomainError):
        return _with_retry_after(Response(exc.to_dict(), status=status_for(exc)), exc)
    if isinstance(exc, RequestDataTooBig):
        return Response(error_body("Request body too large"), status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        # A model invariant refused the write (e.g. a reference into another tenant): a 400, not a 500.
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        response.data = error_body(INVALID_KEY_MESSAGE)
    elif isinstance(exc, exceptions.ValidationError):
        response.data = _validation_body(response.data)
    elif isinstance(exc, exceptions.ParseError):
        response.data = error_body(f"Malformed request body: {exc.detail}")
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        response.data = error_body(str(detail)) if not isinstance(detail, (dict, list)) else _validation_body(detail)
    return response


def unavailable(exc: Exception) -> ServiceUnavailable:
    """The 503 a request gets for one of UNAVAILABLE_ERRORS, logged by class only (a message may name
    the server's address)."""
    logger.warning("shared cache unavailable (%s): answered 503", type(exc).__name__)
    return ServiceUnavailable()


def is_api_path(path: str) -> bool:
    return path.startswith(API_PATH_PREFIXES)


def json_error(message: str, status_code: int) -> JsonResponse:
    return JsonResponse(error_body(message), status=status_code)


def domain_error_response(error: DomainError) -> JsonResponse:
    """A domain error answered outside DRF (the widget, middleware): its body, status and Retry-After."""
    return _with_retry_after(JsonResponse(error.to_dict(), status=status_for(error)), error)


def _with_retry_after(response: R, error: DomainError) -> R:
    """`response` with the error's Retry-After (the seconds of a `retry_after`), when it has one."""
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


class CountOnlyWhenNeeded(Paginator):
    """Django's paginator that reads the first page before counting: a first page shorter than
    `per_page` already says how many objects there are, so the COUNT query runs only when the first
    page is full, or for another page (counted first, as Django does, so a page number past the end is
    refused before any OFFSET is sent). Most lists of a tenant fit on one page: one query where there
    were two, with the same page, count and errors."""

    def page(self, number):
        if self.orphans or "count" in self.__dict__ or str(number).strip() != "1":
            return super().page(number)
        rows = list(self.object_list[: self.per_page])
        if len(rows) < self.per_page:
            self.__dict__["count"] = len(rows)  # what the `count` cached property would hold
        return self._get_page(rows, self.validate_number(number), self)


class Pagination(pagination.PageNumberPagination):
    django_paginator_class = CountOnlyWhenNeeded
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class StrictFieldsMixin:
    """Unknown fields in a write are a 400, not silently dropped."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(set(data) - writable)
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        elif data is not None and not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["Expected a JSON object."]})
        return super().to_internal_value(data)


class ErrorSerializer(serializers.Serializer):
    """The error shape, for the OpenAPI schema."""

    error = serializers.CharField(help_text="One sentence")
    details = serializers.DictField(required=False, help_text="Field → messages (validation errors)")


class TenantScopedPrimaryKeyField(serializers.PrimaryKeyRelatedField):
    """An id of an object of the request's tenant: another tenant's id reads "does not exist", exactly
    like a missing one (no existence leak). The serializer context carries the tenant."""

    def get_queryset(self):
        return for_tenant(super().get_queryset(), self.context.get("tenant"))

    def __deepcopy__(self, memo):
        # Every serializer instance deep-copies its fields; the queryset is only a template (DRF's
        # get_queryset() takes `.all()` of it per use), so the copies share it instead of each
        # deep-copying its Query, the costliest part of copying a serializer's fields.
        queryset = self._kwargs.get("queryset")
        if queryset is not None:
            memo[id(queryset)] = queryset
        return super().__deepcopy__(memo)


class TenantUniqueMixin:
    """ "Unique within the tenant" for a model serializer: the tenant is not one of its fields, so DRF's
    own unique validators cannot see the constraint. Call from `validate()`."""

    Meta: Any
    context: dict
    instance: Any

    def check_unique_in_tenant(self, attrs: dict, field: str, message: str) -> None:
        tenant = self.context.get("tenant")
        if field in attrs and taken_in_tenant(self.Meta.model, tenant, field, attrs[field], instance=self.instance):
            raise serializers.ValidationError({field: [message]})


class FieldsBuiltOnce:
    """A ModelSerializer's fields are built from the model once per class, then copied per instance.

    DRF rebuilds them from the model's metadata for every serializer instance, i.e. every request
    (0.4 ms of CPU for AgentSerializer's 17 fields; a copy costs half that). Copies are made the way DRF copies declared fields
    (`Field.__deepcopy__`: a new field from the same arguments), so each serializer still binds, and
    may change, fields of its own. Only for serializers whose fields depend on the class alone, not
    on the instance or context (override `__init__` to adjust a field, as CredentialSerializer does).
    """

    _field_prototypes: ClassVar[dict[type, dict[str, Any]]] = {}

    def get_fields(self) -> dict[str, Any]:
        prototypes = FieldsBuiltOnce._field_prototypes
        built = prototypes.get(type(self))
        if built is None:
            built = prototypes[type(self)] = super().get_fields()  # type: ignore[misc]
        return copy.deepcopy(built)


# Fields whose reading (get_attribute, to_representation) depends only on the field's own arguments and
# the object read: never on the serializer, its context or the request. Checked by the methods a field
# class resolves to, so a subclass that overrides either is not trusted unless it says
# `reads_without_context = True`.
_CONTEXT_FREE_READS = {
    klass.to_representation
    for klass in (
        serializers.BooleanField,
        serializers.CharField,
        serializers.ChoiceField,
        serializers.DateField,
        serializers.DateTimeField,
        serializers.DecimalField,
        serializers.DurationField,
        serializers.FloatField,
        serializers.IntegerField,
        serializers.JSONField,
        serializers.PrimaryKeyRelatedField,
        serializers.ReadOnlyField,
        serializers.TimeField,
        serializers.UUIDField,
    )
}
_CONTEXT_FREE_ATTRIBUTES = {
    serializers.Field.get_attribute,
    serializers.RelatedField.get_attribute,
    serializers.ManyRelatedField.get_attribute,
}


def reads_without_context(field: serializers.Field) -> bool:
    """Whether one bound copy of `field` may read objects for every serializer of its class at once."""
    if isinstance(field, serializers.BaseSerializer) or getattr(field.default, "requires_context", False):
        return False
    if isinstance(field, serializers.ManyRelatedField) and not reads_without_context(field.child_relation):
        return False
    klass = type(field)
    if getattr(klass, "reads_without_context", False):
        return True
    return klass.to_representation in _CONTEXT_FREE_READS and klass.get_attribute in _CONTEXT_FREE_ATTRIBUTES


class ReadsWithSharedFields:
    """Reading (`to_representation`, e.g. every object of a list) without copying the fields per object.

    DRF deep-copies a serializer's fields for every instance before it can read anything: most of a list
    page's serializer cost. A serializer that only reads (its own `fields` never touched: no validation,
    no view or `__init__` adjusting them) reads with fields bound once per class instead, for the field
    classes whose reading is context-free (`reads_without_context`); the others (method fields, nested
    serializers, fields that read the request) are still copied and bound to this serializer. The shared
    fields are only ever read from, so threads may use them at once.
    """

    _shared_readers: ClassVar[dict[type, tuple[tuple[str, Any, bool], ...]]] = {}

    @property
    def _readable_fields(self):
        if "fields" in self.__dict__ or type(self).__init__ is not serializers.BaseSerializer.__init__:
            return super()._readable_fields
        readers = ReadsWithSharedFields._shared_readers.get(type(self))
        if readers is None:
            bound = type(self)().fields
            readers = ReadsWithSharedFields._shared_readers[type(self)] = tuple(
                (name, field, reads_without_context(field)) for name, field in bound.items() if not field.write_only
            )
        return [field if shared else self._bound_copy(name, field) for name, field, shared in readers]

    def _bound_copy(self, name: str, field: Any) -> Any:
        field = copy.deepcopy(field)
        field.bind(field_name=name, parent=self)
        return field


class StrictModelSerializer(StrictFieldsMixin, ReadsWithSharedFields, FieldsBuiltOnce, serializers.ModelSerializer):
    pass


class StrictSerializer(StrictFieldsMixin, serializers.Serializer):
    pass
