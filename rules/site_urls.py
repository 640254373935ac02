"""Pages outside the APIs: the widget demo page and the small demo API the demo tenant's rules call."""

from __future__ import annotations

from django.urls import path

from rules import demo_views

urlpatterns = [
    path("widget/demo/", demo_views.widget_demo, name="widget-demo"),
    path("demo-api/orders/<str:order_id>", demo_views.demo_order, name="demo-api-order"),
    path("demo-api/prices/<str:sku>", demo_views.demo_price, name="demo-api-price"),
]
