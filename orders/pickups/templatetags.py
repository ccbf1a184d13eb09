"""Template filters for pickup pages (registered as the "pickups" library in o2o/settings.py)."""

from django import template

register = template.Library()


@register.filter
def left_to_collect(item) -> int:
    """Units of an order line still to hand over (partial pickups)."""
    return max(item.quantity - item.handed_over, 0)
