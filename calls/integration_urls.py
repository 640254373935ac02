"""The public call API (SPEC §9), mounted at /integration/v1/."""

from __future__ import annotations

from django.urls import re_path

from calls import views

urlpatterns = [
    re_path(r"^agents/?$", views.AgentListView.as_view(), name="integration-agents"),
    re_path(r"^sip-trunks/?$", views.SipTrunkListView.as_view(), name="integration-sip-trunks"),
    re_path(r"^calls/?$", views.CallListCreateView.as_view(), name="integration-calls"),
    re_path(r"^calls/(?P<call_id>[^/]+)/status/?$", views.CallStatusView.as_view(), name="integration-call-status"),
    re_path(
        r"^calls/(?P<call_id>[^/]+)/transcript/?$",
        views.CallTranscriptView.as_view(),
        name="integration-call-transcript",
    ),
]
