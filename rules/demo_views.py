"""The widget demo page, and a small demo API (orders, prices) the demo tenant's rules call over HTTP."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from rules.models import WidgetKey

DEMO_KEY_NAME = "Demo page"
ORDER_STATUSES = ["processing", "shipped", "out for delivery", "delivered"]
PRODUCTS = {
    "WIDGET-42": ("Deluxe widget", 49.90),
    "GADGET-7": ("Pocket gadget", 19.99),
    "SPROCKET-1": ("Sprocket", 4.25),
}


@require_GET
def widget_demo(request):
    """A product page that embeds the chat widget (key from `?key=`, else the demo tenant's demo key)."""
    raw_key = request.GET.get("key", "")
    key = WidgetKey.objects.filter(is_active=True, key=raw_key).first() if raw_key else None
    if key is None:
        key = WidgetKey.objects.filter(is_active=True, name=DEMO_KEY_NAME, tenant__slug="demo").first()
    if key is None:
        raise Http404("No widget key: run `make run` (which loads the demo tenant) or pass ?key=swb_pk_…")
    sku = request.GET.get("sku", "WIDGET-42")
    product = PRODUCTS.get(sku, PRODUCTS["WIDGET-42"])
    context = {
        "widget_key": key.key,
        "api_base": request.build_absolute_uri("/").rstrip("/"),
        "sku": sku,
        "product": product[0],
    }
    return render(request, "rules/widget_demo.html", context)


def _digest(value: str) -> int:
    return int(hashlib.sha256(value.encode()).hexdigest()[:8], 16)


@require_GET
def demo_order(request, order_id: str):
    if not order_id.isdigit() or int(order_id) == 0:
        return JsonResponse({"error": "order not found"}, status=404)
    seed = _digest(order_id)
    eta = date(2026, 11, 21) + timedelta(days=seed % 6)
    return JsonResponse(
        {
            "data": {
                "id": order_id,
                "status": ORDER_STATUSES[seed % len(ORDER_STATUSES)],
                "eta": eta.isoformat(),
                "carrier": ["DHL", "UPS", "PostNL"][seed % 3],
                "items": [{"sku": "WIDGET-42", "quantity": 1 + seed % 3}],
            }
        }
    )


@require_GET
def demo_price(request, sku: str):
    if sku.upper() not in PRODUCTS:
        return JsonResponse({"error": "unknown product"}, status=404)
    name, amount = PRODUCTS[sku.upper()]
    return JsonResponse({"data": {"sku": sku.upper(), "name": name, "price": {"amount": amount, "currency": "EUR"}}})
