from __future__ import annotations

from django.urls import path

from rules import widget_views

urlpatterns = [
    path("sessions", widget_views.sessions, name="widget-sessions"),
    path("sessions/", widget_views.sessions),
    path("sessions/<uuid:session_id>/messages", widget_views.session_messages, name="widget-session-messages"),
    path("sessions/<uuid:session_id>/messages/", widget_views.session_messages),
]
