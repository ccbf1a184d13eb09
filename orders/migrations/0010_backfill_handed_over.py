"""Hand-overs recorded before units were counted per line (0007) were whole orders: count them, so that
every redemption's units are in `handed_over` and a void can give them back without a special case."""

from django.db import migrations
from django.db.models import Exists, F, OuterRef


def backfill(apps, schema_editor):
    OrderItem = apps.get_model("orders", "OrderItem")
    Redemption = apps.get_model("orders", "Redemption")
    standing = Redemption.objects.filter(order_id=OuterRef("order_id"), voided_at__isnull=True)
    OrderItem.objects.filter(Exists(standing), handed_over=0).update(handed_over=F("quantity"))


class Migration(migrations.Migration):
    dependencies = [("orders", "0009_admin_labels")]
    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
