# Pickup verification: redemptions (the audit trail of hand-overs) and the POS API's stored answers.

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('merchants', '0002_merchant_unpaid_order_minutes'),
        ('orders', '0003_reconciliation'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='PickupIdempotencyKey',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('key', models.CharField(max_length=64)),
                ('code', models.CharField(max_length=16)),
                ('status_code', models.PositiveSmallIntegerField(null=True)),
                ('body', models.TextField(blank=True)),
                ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': 'pickup idempotency key',
                'verbose_name_plural': 'pickup idempotency keys',
                'constraints': [models.UniqueConstraint(fields=('user', 'key'), name='pickup_idempotency_key_once')],
            },
        ),
        migrations.CreateModel(
            name='Redemption',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('channel', models.CharField(choices=[('web', 'Cashier page'), ('api', 'POS API')], max_length=8, verbose_name='channel')),
                ('client', models.CharField(blank=True, help_text="Browser user agent, or the POS terminal's name.", max_length=255, verbose_name='client')),
                ('client_ip', models.GenericIPAddressField(blank=True, null=True, verbose_name='client IP')),
                ('idempotency_key', models.CharField(blank=True, editable=False, max_length=64)),
                ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now, verbose_name='handed over')),
                ('lines', models.JSONField(default=list, verbose_name='handed over')),
                ('order_status_before', models.CharField(max_length=20, verbose_name='order status before')),
                ('voided_at', models.DateTimeField(blank=True, null=True, verbose_name='voided')),
                ('void_reason', models.CharField(blank=True, max_length=255, verbose_name='void reason')),
                ('cashier', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='cashier')),
                ('merchant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='merchants.merchant', verbose_name='merchant')),
                ('order', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='redemptions', to='orders.order', verbose_name='order')),
                ('store', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='redemptions', to='merchants.store', verbose_name='store')),
                ('voided_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='voided by')),
            ],
            options={
                'verbose_name': 'redemption',
                'verbose_name_plural': 'redemptions',
                'ordering': ['-created_at', '-id'],
                'indexes': [
                    models.Index(fields=['merchant', 'created_at'], name='orders_rede_merchan_0f7fb3_idx'),
                    models.Index(fields=['order', 'created_at'], name='orders_rede_order_i_82e1f5_idx'),
                    models.Index(fields=['store', 'created_at'], name='orders_rede_store_i_e46286_idx'),
                ],
                'constraints': [
                    models.CheckConstraint(
                        condition=models.Q(models.Q(('void_reason', ''), ('voided_at__isnull', True), ('voided_by__isnull', True)), models.Q(('voided_at__isnull', False), ('voided_by__isnull', False), models.Q(('void_reason', ''), _negated=True)), _connector='OR'),
                        name='redemption_void_complete',
                    ),
                ],
            },
        ),
    ]
