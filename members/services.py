"""Writes for members."""

from django.db import IntegrityError, transaction

from merchants.models import Merchant

from .models import Member
from .phones import phone_normalize


def member_for_phone(*, merchant: Merchant, phone: str) -> Member:
    """The merchant's member with this phone number, created on first use.

    Two first orders from the same phone at the same moment both end with the same member:
    the unique (merchant, phone) constraint decides, the loser reads the winner's row.
    """
    normalised = phone_normalize(phone)
    member = Member.objects.filter(merchant=merchant, phone=normalised).first()
    if member:
        return member
    try:
        with transaction.atomic():
            return Member.objects.create(merchant=merchant, phone=normalised)
    except IntegrityError:
        return Member.objects.get(merchant=merchant, phone=normalised)
