"""Inbound webhooks of dialer back ends: `POST /hooks/livekit` (a thin adapter over the service)."""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from calls.dialers import livekit_webhooks

STATUS_OF = {"bad_request": 400, "unauthorized": 401, "unknown_room": 404, "unavailable": 503}


@csrf_exempt  # signed by LiveKit (a JWT over the body), not a browser form
def livekit_webhook(request: HttpRequest) -> JsonResponse:
    if request.method != "POST":
        response = JsonResponse({"error": "Method not allowed: use POST"}, status=405)
        response["Allow"] = "POST"
        return response
    try:
        body = request.body
    except RequestDataTooBig:
        return JsonResponse({"error": "Request body too large"}, status=413)
    try:
        event = livekit_webhooks.receive(body, request.headers.get("Authorization", ""))
    except livekit_webhooks.WebhookRefused as exc:
        return JsonResponse({"error": exc.message}, status=STATUS_OF[exc.code])
    return JsonResponse({"status": "duplicate" if event is None else "recorded"})
