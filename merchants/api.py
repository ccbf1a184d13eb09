"""Stores, products and stock for POS terminals and integrations, scoped to the caller's merchant."""

import django_filters
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers, viewsets

from o2o.tenancy import (
    ManagersWriteOthersRead,
    TenantModelSerializer,
    TenantViewSetMixin,
    request_merchant,
    tenant_choices,
)

from .models import Product, Store, StoreStock


def unique_in_merchant(serializer: serializers.ModelSerializer, *, field: str, value, message: str):
    """Refuse `value` if another row of the same merchant has it: a 400 naming the field.

    The models' per-merchant unique constraints include `merchant`, which is read-only here, so
    DRF does not check them and a clash used to reach the database as an IntegrityError (a 500).
    Only the merchant's own rows count: another merchant's codes are free and reveal nothing.
    """
    instance = serializer.instance
    merchant = instance.merchant if instance is not None else request_merchant(serializer.context["request"])
    clash = serializer.Meta.model.objects.filter(merchant=merchant, **{field: value})
    if instance is not None:
        clash = clash.exclude(pk=instance.pk)
    if clash.exists():
        raise serializers.ValidationError(message)
    return value


class StoreSerializer(TenantModelSerializer):
    merchant = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Store
        fields = [
            "id",
            "merchant",
            "name",
            "code",
            "address",
            "phone",
            "opening_hours",
            "pickup_instructions",
            "is_active",
        ]

    def validate_code(self, code):
        return unique_in_merchant(self, field="code", value=code, message=_("A store with this code already exists."))

    def validate_name(self, name):
        return unique_in_merchant(self, field="name", value=name, message=_("A store with this name already exists."))


class StoreViewSet(TenantViewSetMixin, viewsets.ModelViewSet):
    queryset = Store.objects.select_related("merchant").order_by("name", "id")
    serializer_class = StoreSerializer
    permission_classes = [ManagersWriteOthersRead]
    filterset_fields = ["is_active", "code"]
    search_fields = ["name", "code", "address"]
    ordering_fields = ["name", "code"]


class StockLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = StoreStock
        fields = ["store", "quantity"]


class ProductSerializer(TenantModelSerializer):
    merchant = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    stock = StockLineSerializer(many=True, read_only=True)

    class Meta:
        model = Product
        fields = ["id", "merchant", "name", "sku", "price", "description", "image", "is_active", "stock"]
        read_only_fields = ["image"]

    def validate_sku(self, sku):
        return unique_in_merchant(self, field="sku", value=sku, message=_("A product with this SKU already exists."))


class ProductFilter(django_filters.FilterSet):
    store = django_filters.ModelChoiceFilter(
        field_name="stock__store", queryset=tenant_choices(Store), label=_("In stock at store")
    )

    class Meta:
        model = Product
        fields = ["is_active", "sku", "store"]


class ProductViewSet(TenantViewSetMixin, viewsets.ModelViewSet):
    queryset = Product.objects.select_related("merchant").prefetch_related("stock").order_by("name", "id")
    serializer_class = ProductSerializer
    permission_classes = [ManagersWriteOthersRead]
    filterset_class = ProductFilter
    search_fields = ["name", "sku"]
    ordering_fields = ["name", "price", "sku"]


class StoreStockSerializer(TenantModelSerializer):
    class Meta:
        model = StoreStock
        fields = ["id", "product", "store", "quantity", "updated_at"]
        read_only_fields = ["updated_at"]


class StoreStockFilter(django_filters.FilterSet):
    # Choices scoped like the rows: another merchant's id is "not a valid choice", as a made-up one.
    store = django_filters.ModelChoiceFilter(queryset=tenant_choices(Store))
    product = django_filters.ModelChoiceFilter(queryset=tenant_choices(Product))

    class Meta:
        model = StoreStock
        fields = ["store", "product"]


class StoreStockViewSet(TenantViewSetMixin, viewsets.ModelViewSet):
    queryset = StoreStock.objects.order_by("store_id", "product_id")
    serializer_class = StoreStockSerializer
    permission_classes = [ManagersWriteOthersRead]
    filterset_class = StoreStockFilter
