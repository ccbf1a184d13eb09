"""Writes for merchant setup: staff membership and stock. Views and admin call these."""

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from .models import Merchant, Product, StaffRole, Store, StoreStock

User = get_user_model()

# Who may enter the admin: managers and analysts; cashiers work at /cashier/ and via the API.
_ADMIN_ROLES = {StaffRole.Role.MANAGER, StaffRole.Role.ANALYST}


def staff_stores_validate(*, merchant: Merchant, role: str, stores: Iterable[Store]) -> None:
    """Stores must be the merchant's; only cashiers are tied to stores."""
    stores = list(stores)
    foreign = [s for s in stores if s.merchant_id != merchant.pk]
    if foreign:
        raise ValidationError(
            {
                "stores": _("These stores belong to another merchant: %(names)s")
                % {"names": ", ".join(s.name for s in foreign)}
            }
        )
    if role == StaffRole.Role.CASHIER and not stores:
        raise ValidationError({"stores": _("A cashier needs at least one store to serve.")})


def staff_user_sync(*, staff_role: StaffRole) -> None:
    """Admin access follows the role: managers and analysts are staff users, cashiers are not."""
    user = staff_role.user
    wanted = staff_role.role in _ADMIN_ROLES
    if user.is_staff != wanted and not user.is_superuser:
        user.is_staff = wanted
        user.save(update_fields=["is_staff"])


@transaction.atomic
def staff_member_create(
    *,
    merchant: Merchant,
    username: str,
    password: str | None,
    role: str,
    stores: Iterable[Store] = (),
    first_name: str = "",
    last_name: str = "",
    email: str = "",
) -> StaffRole:
    """Create a user who serves `merchant` in `role` (at `stores` for a cashier)."""
    stores = list(stores)
    staff_stores_validate(merchant=merchant, role=role, stores=stores)
    user = User(username=username, first_name=first_name, last_name=last_name, email=email)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.save()
    staff_role = StaffRole.objects.create(user=user, merchant=merchant, role=role)
    staff_role.stores.set(stores)
    staff_user_sync(staff_role=staff_role)
    return staff_role


def stock_set(*, product: Product, store: Store, quantity: int) -> StoreStock:
    """Set how many units of `product` `store` holds (idempotent)."""
    if product.merchant_id != store.merchant_id:
        raise ValidationError(_("The product and the store belong to different merchants."))
    if quantity < 0:
        raise ValidationError({"quantity": _("Stock cannot be negative.")})
    stock, _created = StoreStock.objects.update_or_create(
        product=product, store=store, defaults={"merchant_id": product.merchant_id, "quantity": quantity}
    )
    return stock
