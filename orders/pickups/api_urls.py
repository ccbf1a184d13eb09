"""Pickup lookup and redemption for POS terminals under /api/v1/pickups/."""

from django.urls import path

from .api import PickupLookupView, PickupReadyBulkView, PickupReadyView, PickupRedeemView

urlpatterns = [
    # Before "<code>/": no voucher code is "ready" (codes are ten characters).
    path("ready/", PickupReadyBulkView.as_view(), name="api-pickups-ready"),
    path("<str:code>/ready/", PickupReadyView.as_view(), name="api-pickup-ready"),
    path("<str:code>/", PickupLookupView.as_view(), name="api-pickup"),
    path("<str:code>/redeem/", PickupRedeemView.as_view(), name="api-pickup-redeem"),
]
