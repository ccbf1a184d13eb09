"""factory_boy factories and a two-merchant world for isolation tests."""

from dataclasses import dataclass
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from merchants.models import Merchant, Product, StaffRole, Store, StoreStock
from merchants.services import staff_user_sync

User = get_user_model()


class MerchantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Merchant
        django_get_or_create = ["slug"]

    name = factory.Sequence(lambda n: f"Merchant {n}")
    slug = factory.Sequence(lambda n: f"merchant-{n}")


class StoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Store

    merchant = factory.SubFactory(MerchantFactory)
    name = factory.Sequence(lambda n: f"Store {n}")
    code = factory.Sequence(lambda n: f"store-{n}")
    address = factory.Sequence(lambda n: f"{n} Huaihai Road")


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    merchant = factory.SubFactory(MerchantFactory)
    name = factory.Sequence(lambda n: f"Product {n}")
    sku = factory.Sequence(lambda n: f"SKU-{n}")
    price = Decimal("19.90")


class StoreStockFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StoreStock

    product = factory.SubFactory(ProductFactory)
    store = factory.SubFactory(StoreFactory, merchant=factory.SelfAttribute("..product.merchant"))
    merchant = factory.SelfAttribute("product.merchant")
    quantity = 10


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", "correct-horse-battery")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


def staff(merchant: Merchant, role: str, stores=(), username: str | None = None) -> User:
    user = UserFactory(**({"username": username} if username else {}))
    staff_role = StaffRole.objects.create(user=user, merchant=merchant, role=role)
    staff_role.stores.set(stores)
    staff_user_sync(staff_role=staff_role)
    user.refresh_from_db()
    return user


@dataclass
class Side:
    merchant: Merchant
    store: Store
    product: Product
    stock: StoreStock
    manager: User
    cashier: User
    analyst: User


def merchant_side(slug: str) -> Side:
    merchant = MerchantFactory(slug=slug, name=slug.title())
    store = StoreFactory(merchant=merchant, name=f"{slug} store", code=f"{slug}-store")
    product = ProductFactory(merchant=merchant, name=f"{slug} tea", sku=f"{slug.upper()}-TEA")
    stock = StoreStockFactory(product=product, store=store)
    return Side(
        merchant=merchant,
        store=store,
        product=product,
        stock=stock,
        manager=staff(merchant, "manager", username=f"{slug}_manager"),
        cashier=staff(merchant, "cashier", [store], username=f"{slug}_cashier"),
        analyst=staff(merchant, "analyst", username=f"{slug}_analyst"),
    )


@dataclass
class World:
    ours: Side
    rival: Side
    superuser: User


def two_merchants() -> World:
    superuser = UserFactory(username="platform", is_staff=True, is_superuser=True)
    return World(ours=merchant_side("ours"), rival=merchant_side("rival"), superuser=superuser)


# --------------------------------------------------------------------------- promotions and orders


def promotion(
    merchant: Merchant,
    *,
    products=None,
    stores=None,
    status: str = "live",
    **fields,
):
    """A promotion of `merchant` (live by default) on `products` (one new product if none), with
    pickup at `stores` (one new store if none and pickup is allowed)."""
    from datetime import timedelta

    from django.utils import timezone

    from orders.models import Promotion, PromotionItem
    from orders.services import promotion_wall_code_assign

    now = timezone.now()
    values = {
        "title": "Longjing tea 250g",
        "promo_price": Decimal("99.00"),
        "original_price": Decimal("268.00"),
        "starts_at": now - timedelta(hours=1),
        "ends_at": now + timedelta(days=7),
        "stock_cap": 100,
        "per_member_limit": 5,
        "allow_pickup": True,
        "status": status,
        **fields,
    }
    promo = Promotion(merchant=merchant, **values)
    promotion_wall_code_assign(promotion=promo)
    promo.save()
    for product, quantity in products or [(ProductFactory(merchant=merchant), 1)]:
        PromotionItem.objects.create(merchant=merchant, promotion=promo, product=product, quantity=quantity)
    if promo.allow_pickup:
        promo.pickup_stores.set(stores if stores is not None else [StoreFactory(merchant=merchant)])
    return promo
