"""Pickup lookup and redemption for POS terminals under /api/v1/pickups/."""

urlpatterns: list = []
