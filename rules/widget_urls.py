from __future__ import annotations

from django.urls import re_path

from rules import widget_views

# A trailing slash is tolerated (documented without it); a session id is a UUID, anything else a 404.
SESSION_ID = r"(?P<session_id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"

urlpatterns = [
    re_path(r"^sessions/?$", widget_views.SessionsView.as_view(), name="widget-sessions"),
    re_path(
        rf"^sessions/{SESSION_ID}/messages/?$",
        widget_views.SessionMessagesView.as_view(),
        name="widget-session-messages",
    ),
]
