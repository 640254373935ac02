"""A callback receiver for the demo (`POST /demo-api/call-callbacks`): what a customer's endpoint does.

It verifies the `X-Switchboard-Signature` with the tenant's webhook secret (found through the call id
in the body) and answers 200 `{"verified": true}`, or 401 — so the demo's delivery rows in the admin
show a real, verified delivery. It stores nothing.
"""

from __future__ import annotations

import hmac
import json
import uuid

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from calls.models import Call
from calls.webhooks import hex_signature


@csrf_exempt
@require_POST
def demo_callback(request):
    try:
        call_id = uuid.UUID(str(json.loads(request.body)["call_id"]))
    except (ValueError, KeyError, TypeError):
        return JsonResponse({"error": "not a call notification"}, status=400)
    call = Call.objects.select_related("tenant").filter(pk=call_id, tenant__slug="demo").first()
    if call is None:
        return JsonResponse({"error": "unknown call"}, status=404)
    expected = hex_signature(call.tenant.webhook_secret, request.body)
    if not hmac.compare_digest(expected, request.headers.get("X-Switchboard-Signature", "")):
        return JsonResponse({"error": "bad signature"}, status=401)
    return JsonResponse({"verified": True})
