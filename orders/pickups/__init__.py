"""Pickup verification at the counter: vouchers, redemptions and their audit trail."""
