"""Helpers for calling the API in tests."""

from __future__ import annotations

from rest_framework.test import APIClient


def bearer_client(raw_key: str) -> APIClient:
    """An APIClient that sends `Authorization: Bearer <raw_key>` on every request."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    client.raw_key = raw_key
    return client
