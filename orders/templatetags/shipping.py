"""The carrier's name for a stored carrier code, in the reader's language: {{ order.carrier|carrier_name }}."""

from django import template

from orders.carriers import carrier_name as _carrier_name

register = template.Library()


@register.filter
def carrier_name(code: str) -> str:
    return _carrier_name(code) if code else ""
