"""Demo merchants, stores, staff and products for `seed_demo`. Creates what is missing, touches nothing else."""

from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q

from .models import Merchant, Product, StaffRole, Store, StoreStock
from .services import staff_user_sync

User = get_user_model()

DEMO_STORES = [
    (
        "nanjing-road",
        "南京路旗舰店 Nanjing Road Flagship",
        "上海市黄浦区南京东路 300 号",
        "10:00–22:00",
        "一楼服务台出示取货码。Show your pickup code at the ground-floor service desk.",
    ),
    (
        "xujiahui",
        "徐家汇店 Xujiahui Mall",
        "上海市徐汇区虹桥路 1 号 B1",
        "10:00–21:30",
        "B1 收银台 3 号窗口取货。Pick up at B1 cashier window 3.",
    ),
    (
        "pudong-t2",
        "浦东机场 T2 店 Pudong Airport T2",
        "上海市浦东国际机场 T2 出发层 D 区",
        "07:00–23:00",
        "安检前 D12 柜台。Counter D12, before security.",
    ),
]
DEMO_PRODUCTS = [
    ("TEA-LJ-250", "明前龙井 250g West Lake Longjing tea", Decimal("268.00")),
    ("MOON-6", "流心奶黄月饼礼盒 (6) Custard mooncake box", Decimal("198.00")),
    ("SILK-SCARF", "真丝围巾 Silk scarf", Decimal("459.00")),
    ("UMB-AUTO", "自动折叠伞 Automatic umbrella", Decimal("89.90")),
    ("COF-BEANS", "云南咖啡豆 500g Yunnan coffee beans", Decimal("128.00")),
    ("TUMBLER", "保温杯 450ml Insulated tumbler", Decimal("149.00")),
]


def _merchant(slug: str, name: str, contact: str) -> Merchant:
    merchant, _ = Merchant.objects.get_or_create(
        slug=slug, defaults={"name": name, "contact_name": contact, "contact_email": f"{slug}@example.com"}
    )
    return merchant


def _store(merchant: Merchant, code: str, name: str, **defaults) -> Store:
    # Found by code *or* name: a manager may change either (the code is in QR links). Looking up
    # the code alone would put a store back under its old code, or, with the name kept, fail on
    # the unique (merchant, name) constraint and abort the whole second run.
    store = Store.objects.filter(Q(code=code) | Q(name=name), merchant=merchant).order_by("pk").first()
    return store or Store.objects.create(merchant=merchant, code=code, name=name, **defaults)


def _product(merchant: Merchant, sku: str, name: str, price: Decimal) -> tuple[Product, bool]:
    # By SKU or name, like stores: a renumbered demo product is the manager's, not missing.
    product = Product.objects.filter(Q(sku=sku) | Q(name=name), merchant=merchant).order_by("pk").first()
    if product:
        return product, False
    return Product.objects.create(merchant=merchant, sku=sku, name=name, price=price), True


def _user(username: str, password: str, **defaults) -> User:
    user, _ = User.objects.get_or_create(username=username, defaults=defaults)
    # Re-hashing the same password would still write a new salt: only set it when it differs.
    if not user.check_password(password):
        user.set_password(password)
        user.save(update_fields=["password"])
    return user


def _staff(user, merchant: Merchant, role: str, stores=()) -> None:
    staff_role, created = StaffRole.objects.get_or_create(user=user, defaults={"merchant": merchant, "role": role})
    if created:
        staff_role.stores.set(stores)
    staff_user_sync(staff_role=staff_role)


@transaction.atomic
def demo_seed(*, password: str) -> dict[str, list[str]]:
    """Demo merchant `demo` (3 stores, products, staff) and `rival` (for isolation checks)."""
    demo = _merchant("demo", "Demo 百货 Department Store", "王经理")
    stores = []
    for code, name, address, hours, instructions in DEMO_STORES:
        stores.append(_store(demo, code, name, address=address, opening_hours=hours, pickup_instructions=instructions))
    for index, (sku, name, price) in enumerate(DEMO_PRODUCTS):
        product, created = _product(demo, sku, name, price)
        if created:
            StoreStock.objects.bulk_create(
                [
                    StoreStock(merchant=demo, product=product, store=s, quantity=20 + 10 * ((index + n) % 3))
                    for n, s in enumerate(stores)
                ]
            )

    rival = _merchant("rival", "Rival Mart 对手商城", "李经理")
    rival_store = _store(rival, "rival-central", "Rival Central", address="北京市朝阳区建国路 88 号")
    rival_product, created = _product(rival, "RIVAL-TEA", "Rival tea", Decimal("99.00"))
    if created:
        StoreStock.objects.create(merchant=rival, product=rival_product, store=rival_store, quantity=50)

    _user("admin", password, is_staff=True, is_superuser=True, email="admin@example.com")
    _staff(_user("manager", password, first_name="Wang", email="manager@example.com"), demo, StaffRole.Role.MANAGER)
    _staff(_user("cashier", password, first_name="Zhao"), demo, StaffRole.Role.CASHIER, stores[:2])
    _staff(_user("analyst", password, first_name="Chen"), demo, StaffRole.Role.ANALYST)
    _staff(_user("rival_manager", password, first_name="Li"), rival, StaffRole.Role.MANAGER)
    return {
        "platform superuser": ["admin"],
        "demo": ["manager", "cashier", "analyst"],
        "rival": ["rival_manager"],
    }
