"""Pages of the calls app outside the APIs: the demo's callback receiver."""

from __future__ import annotations

from django.urls import path

from calls import demo_views

urlpatterns = [
    path("demo-api/call-callbacks", demo_views.demo_callback, name="demo-api-call-callbacks"),
]
