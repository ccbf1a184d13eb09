"""Pickup lookup and redemption for POS terminals under /api/v1/pickups/."""

from django.urls import path

from .api import PickupLookupView, PickupRedeemView

urlpatterns = [
    path("<str:code>/", PickupLookupView.as_view(), name="api-pickup"),
    path("<str:code>/redeem/", PickupRedeemView.as_view(), name="api-pickup-redeem"),
]
