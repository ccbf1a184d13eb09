"""Reconciliation in the admin: runs (read-only), their discrepancies (resolve with a note, CSV export), and
a statement upload that reconciles in the background. Everything is scoped to the user's merchant."""

import csv
import itertools

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import transaction
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from merchants.models import Merchant
from o2o.pagination import CappedCountPaginator
from o2o.tenancy import ANALYST, MANAGER, TenantAdmin, merchant_of, scope_queryset

from . import selectors, services
from .forms import ResolveForm, StatementUploadForm
from .models import Discrepancy, ReconciliationRun

_RUN_COUNTS = [
    "lines_total", "matched", "amount_mismatch", "missing_here", "healed", "missing_at_provider", "refund_mismatch",
    "duplicate",
]  # fmt: skip
_RUN_TOTALS = ["currency", "trade_count", "trades_total", "refund_count", "refunds_total", "fees_total", "net_total"]


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(TenantAdmin):
    # Runs are the record of what a statement said: nobody edits or deletes them. Managers upload.
    role_permissions = {MANAGER: frozenset({"view", "upload"}), ANALYST: frozenset({"view"})}
    list_display = [
        "statement_date", "provider", "status", "source", *_RUN_COUNTS, "fees_total", "net_total",
        "discrepancies_link", "merchant",
    ]  # fmt: skip
    list_filter = ["status", "provider", "source", "statement_date", "merchant"]
    list_select_related = ["merchant"]
    date_hierarchy = "statement_date"
    paginator = CappedCountPaginator
    change_list_template = "admin/orders/reconciliation/run_change_list.html"
    fieldsets = [
        (None, {"fields": [
            "merchant", "provider", "statement_date", "status", "error", "error_line_no", "discrepancies_link",
        ]}),
        (_("Outcomes"), {"fields": _RUN_COUNTS}),
        (_("The day as billed"), {"fields": _RUN_TOTALS}),
        (_("Run"), {"fields": [
            "source", "file_sha256", "started_by", "created_at", "started_at", "finished_at",
        ]}),
    ]  # fmt: skip
    readonly_fields = [field for _name, options in fieldsets for field in options["fields"]]

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("discrepancies"))
    def discrepancies_link(self, run):
        if run.pk is None:
            return "-"
        url = reverse("admin:orders_discrepancy_changelist") + f"?run={run.pk}"
        return format_html('<a href="{}">{}</a>', url, _("%(n)d open or recorded") % {"n": run.discrepancy_count})

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "may_upload": self._may(request, "upload")}
        return super().changelist_view(request, extra_context)

    # -- upload
    def get_urls(self):
        upload = path("upload/", self.admin_site.admin_view(self.upload_view), name="orders_reconciliationrun_upload")
        return [upload, *super().get_urls()]

    def upload_view(self, request):
        if not self._may(request, "upload"):
            raise Http404
        superuser = request.user.is_superuser
        form = StatementUploadForm(
            request.POST or None, request.FILES or None,
            merchant_choices=Merchant.objects.filter(is_active=True) if superuser else None,
        )  # fmt: skip
        if request.method == "POST" and form.is_valid():
            merchant = form.cleaned_data["merchant"] if superuser else merchant_of(request.user)
            with transaction.atomic():
                run, queued = services.reconciliation_run_upload(
                    merchant=merchant, provider=form.cleaned_data["provider"],
                    statement_date=form.cleaned_data["statement_date"], upload=form.cleaned_data["statement"],
                    started_by=request.user,
                )  # fmt: skip
            if queued:
                self.message_user(
                    request,
                    _("Statement received. It is being reconciled in the background: this page shows the counts "
                      "when the run has finished (reload it), and its discrepancies are linked here."),
                )  # fmt: skip
            else:
                self.message_user(
                    request, _("This statement was reconciled before; nothing changed. Here is its run."), messages.INFO
                )
            return redirect("admin:orders_reconciliationrun_change", run.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Upload a settlement statement"),
            "opts": self.opts,
            "form": form,
        }
        return TemplateResponse(request, "admin/orders/reconciliation/upload.html", context)


class RunFilter(admin.SimpleListFilter):
    """The run a discrepancy belongs to: the latest runs to pick from (a run's own link selects any)."""

    title = _("run")
    parameter_name = "run"

    def lookups(self, request, model_admin):
        runs = list(scope_queryset(ReconciliationRun.objects.all(), request.user).order_by("-id")[:20])
        chosen = self._run_id()
        if chosen and chosen not in {run.pk for run in runs}:
            runs += list(scope_queryset(ReconciliationRun.objects.filter(pk=chosen), request.user))
        return [(str(run.pk), str(run)) for run in runs]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        run_id = self._run_id()
        # The rows are already the merchant's: another merchant's run id simply matches nothing.
        return queryset.filter(run_id=run_id) if run_id else queryset.none()

    def _run_id(self) -> int | None:
        value = self.value()
        return int(value) if value and value.isdigit() else None


class Echo:
    """A write-only file for csv.writer: each row goes straight into the streaming response."""

    def write(self, value):
        return value


@admin.register(Discrepancy)
class DiscrepancyAdmin(TenantAdmin):
    # "change" is resolving (an action); no field is edited in a form.
    role_permissions = {MANAGER: frozenset({"view", "change"}), ANALYST: frozenset({"view"})}
    list_display = [
        "kind", "status", "statement_date", "line_no", "out_trade_no", "provider_trade_no", "out_refund_no",
        "our_amount", "their_amount", "detail", "resolved_by", "resolved_at", "merchant",
    ]  # fmt: skip
    list_filter = ["kind", "status", RunFilter, "merchant"]
    list_select_related = ["run", "resolved_by", "merchant"]
    search_fields = ["=out_trade_no", "=provider_trade_no", "=out_refund_no"]
    paginator = CappedCountPaginator
    actions = ["resolve", "export_selected"]
    change_list_template = "admin/orders/reconciliation/discrepancy_change_list.html"
    fields = [
        "merchant", "run", "kind", "status", "line_no", "out_trade_no", "provider_trade_no", "out_refund_no",
        "payment", "our_amount", "their_amount", "occurred_at", "detail", "created_at", "resolution_note",
        "resolved_by", "resolved_at",
    ]  # fmt: skip
    readonly_fields = fields

    def has_add_permission(self, request, *args):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("statement date"), ordering="run__statement_date")
    def statement_date(self, discrepancy):
        return discrepancy.run.statement_date

    # -- resolve, with a note asked for on an intermediate page
    @admin.action(description=_("Resolve selected discrepancies (with a note)"), permissions=["change"])
    def resolve(self, request, queryset):
        form = ResolveForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            resolved = services.discrepancies_resolve(
                discrepancies=queryset, user=request.user, note=form.cleaned_data["note"]
            )
            self.message_user(
                request,
                ngettext("%(n)d discrepancy resolved.", "%(n)d discrepancies resolved.", resolved) % {"n": resolved},
            )
            return None
        open_ones = queryset.filter(status=Discrepancy.Status.OPEN).select_related("run")
        context = {
            **self.admin_site.each_context(request),
            "title": _("Resolve discrepancies"),
            "opts": self.opts,
            "form": form,
            "shown": open_ones[:100],
            "open_count": open_ones.count(),
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/orders/reconciliation/resolve.html", context)

    # -- CSV export (streamed; only the merchant's rows, as the list shows them)
    @admin.action(description=_("Export selected discrepancies as CSV"))
    def export_selected(self, request, queryset):
        return self._csv(queryset)

    def get_urls(self):
        export = path("export/", self.admin_site.admin_view(self.export_view), name="orders_discrepancy_export")
        return [export, *super().get_urls()]

    def export_view(self, request):
        if not self.has_view_permission(request):
            raise Http404
        # The changelist's own filters and search, on the changelist's (merchant-scoped) rows.
        changelist = self.get_changelist_instance(request)
        return self._csv(changelist.get_queryset(request))

    def _csv(self, queryset):
        writer = csv.writer(Echo())
        rows = selectors.discrepancy_export_rows(discrepancies=queryset)
        # The byte-order mark makes spreadsheet programs read the file as UTF-8 (Chinese notes and names).
        chunks = itertools.chain(["\ufeff"], (writer.writerow(row) for row in rows))
        response = StreamingHttpResponse(chunks, content_type="text/csv; charset=utf-8")
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = f'attachment; filename="discrepancies-{stamp}.csv"'
        return response
