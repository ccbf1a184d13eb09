"""Finance staff review runs and discrepancies in the admin: scoped to their merchant, resolved with a note,
exported as CSV, and statements uploaded to be reconciled in the background."""

import csv
import io
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from orders.reconciliation import services
from orders.reconciliation.models import Discrepancy, ReconciliationRun
from tests.factories import UserFactory, staff

from .books import DAY, NOON, Line, reconcile, statement, statement_parse, trade

K, S = Discrepancy.Kind, Discrepancy.Status
RUNS = reverse("admin:orders_reconciliationrun_changelist")
DISCREPANCIES = reverse("admin:orders_discrepancy_changelist")
EXPORT = reverse("admin:orders_discrepancy_export")
UPLOAD = reverse("admin:orders_reconciliationrun_upload")
pytestmark = pytest.mark.django_db


@pytest.fixture
def runs(books, rival_books):
    """A run with discrepancies for each merchant; the rival's trade numbers say RIVAL."""
    ours_paid = books.payment(paid_at=NOON)
    ours = reconcile(books, [trade(ours_paid, amount="1.00"), Line(kind="trade", out_trade_no="OURS-X", amount="2")])
    rival_paid = rival_books.payment("RIVAL-PAID", paid_at=NOON)
    theirs = reconcile(rival_books, [trade(rival_paid, amount="3.00"), Line(kind="trade", out_trade_no="RIVAL-X",
                                                                           amount="4")])  # fmt: skip
    assert ours.discrepancies.count() == 2 and theirs.discrepancies.count() == 2
    return ours, theirs


@pytest.fixture
def manager(books, client):
    user = staff(books.merchant, "manager", username="ours_manager")
    client.force_login(user)
    return user


def _csv(response) -> list[list[str]]:
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(body)))


def test_runs_list_shows_the_merchants_runs_with_counts_and_a_link_to_their_discrepancies(client, manager, runs):
    ours, theirs = runs

    response = client.get(RUNS)

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [ours]
    assert f"{DISCREPANCIES}?run={ours.pk}".encode() in response.content
    assert UPLOAD.encode() in response.content


def test_another_merchants_run_and_discrepancy_pages_are_not_found(client, manager, runs):
    ours, theirs = runs
    their_discrepancy = theirs.discrepancies.first()

    assert client.get(reverse("admin:orders_reconciliationrun_change", args=[ours.pk])).status_code == 200
    assert client.get(reverse("admin:orders_reconciliationrun_change", args=[theirs.pk])).status_code == 404
    assert client.get(reverse("admin:orders_discrepancy_change", args=[their_discrepancy.pk])).status_code == 404
    assert client.get(reverse("admin:orders_reconciliationrun_change", args=[10**9])).status_code == 404


def test_runs_are_read_only(client, manager, runs):
    ours, _theirs = runs
    url = reverse("admin:orders_reconciliationrun_change", args=[ours.pk])

    client.post(url, {"status": "failed"})

    ours.refresh_from_db()
    assert ours.status == "succeeded"
    assert client.get(reverse("admin:orders_reconciliationrun_add")).status_code == 403
    assert client.get(reverse("admin:orders_reconciliationrun_delete", args=[ours.pk])).status_code == 403


def test_discrepancies_filter_by_kind_status_and_run_within_the_merchant(client, manager, runs):
    ours, theirs = runs

    by_kind = client.get(DISCREPANCIES, {"kind__exact": K.MISSING_HERE})
    by_run = client.get(DISCREPANCIES, {"run": ours.pk, "status__exact": S.OPEN})
    their_run = client.get(DISCREPANCIES, {"run": theirs.pk})

    assert [d.out_trade_no for d in by_kind.context["cl"].result_list] == ["OURS-X"]
    assert by_run.context["cl"].result_list.count() == 2
    assert list(their_run.context["cl"].result_list) == []
    # the run filter offers the merchant's runs only
    assert str(theirs) not in by_run.content.decode()


def test_the_discrepancy_list_stays_within_a_few_queries(client, manager, runs, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        assert client.get(DISCREPANCIES).status_code == 200
    with django_assert_max_num_queries(12):
        assert client.get(RUNS).status_code == 200


def test_resolving_asks_for_a_note_then_records_who_and_when(client, manager, runs):
    ours, _theirs = runs
    ids = [str(pk) for pk in ours.discrepancies.values_list("pk", flat=True)]
    action = {"action": "resolve", "_selected_action": ids}

    # the action first shows the intermediate page with the note to write
    page = client.post(DISCREPANCIES, action)
    assert page.status_code == 200
    assert b"Resolution note" in page.content and b"2 open discrepancies will be marked resolved" in page.content

    # an empty note is refused on that page
    refused = client.post(DISCREPANCIES, {**action, "apply": "1", "note": "  "})
    assert refused.status_code == 200 and b"This field is required" in refused.content
    assert not Discrepancy.objects.filter(status=S.RESOLVED).exists()

    # a note resolves them, with the user and the time
    done = client.post(DISCREPANCIES, {**action, "apply": "1", "note": "Refunded the customer by hand."})
    assert done.status_code == 302
    resolved = list(ours.discrepancies.all())
    assert {d.status for d in resolved} == {S.RESOLVED}
    assert {d.resolved_by for d in resolved} == {manager}
    assert all(d.resolved_at and d.resolution_note == "Refunded the customer by hand." for d in resolved)


def test_resolving_cannot_reach_another_merchants_discrepancies(client, manager, runs):
    _ours, theirs = runs
    their_ids = [str(pk) for pk in theirs.discrepancies.values_list("pk", flat=True)]

    client.post(DISCREPANCIES, {"action": "resolve", "_selected_action": their_ids, "apply": "1", "note": "mine now"})

    assert set(theirs.discrepancies.values_list("status", flat=True)) == {S.OPEN}


def test_analysts_see_discrepancies_but_cannot_resolve_or_upload(client, books, runs):
    ours, _theirs = runs
    client.force_login(staff(books.merchant, "analyst", username="ours_analyst"))
    ids = [str(pk) for pk in ours.discrepancies.values_list("pk", flat=True)]

    assert client.get(DISCREPANCIES).status_code == 200
    client.post(DISCREPANCIES, {"action": "resolve", "_selected_action": ids, "apply": "1", "note": "x"})
    assert set(ours.discrepancies.values_list("status", flat=True)) == {S.OPEN}
    assert client.get(UPLOAD).status_code == 404


def test_the_csv_export_streams_the_merchants_discrepancies_only(client, manager, runs):
    ours, theirs = runs

    rows = _csv(client.get(EXPORT))

    assert rows[0][:4] == ["run", "statement date", "provider", "kind"]
    numbers = {row[6] for row in rows[1:]}
    assert numbers == set(ours.discrepancies.values_list("out_trade_no", flat=True))
    assert not any("RIVAL" in cell for row in rows for cell in row)


def test_the_csv_export_never_includes_another_merchants_rows_whatever_is_asked(client, manager, runs):
    _ours, theirs = runs
    their_ids = [str(pk) for pk in theirs.discrepancies.values_list("pk", flat=True)]

    by_their_run = _csv(client.get(EXPORT, {"run": theirs.pk}))
    by_merchant = _csv(client.get(EXPORT, {"merchant__id__exact": theirs.merchant_id}))
    selected = client.post(DISCREPANCIES, {"action": "export_selected", "_selected_action": their_ids})

    assert by_their_run[1:] == []
    assert not any("RIVAL" in cell for row in by_merchant for cell in row)
    # their ids, selected by hand, select nothing: the export has its header only
    assert len(_csv(selected)) == 1


def test_the_csv_export_follows_the_lists_filters(client, manager, runs):
    rows = _csv(client.get(EXPORT, {"kind__exact": K.AMOUNT_MISMATCH}))

    assert [row[3] for row in rows[1:]] == [K.AMOUNT_MISMATCH]


def test_exported_cells_cannot_become_spreadsheet_formulas(client, manager, books):
    reconcile(books, [Line(kind="trade", out_trade_no="=HYPERLINK(1)", provider_trade_no="+2", amount="1.00")])

    [row] = _csv(client.get(EXPORT))[1:]

    assert row[6:8] == ["'=HYPERLINK(1)", "'+2"]


def test_a_platform_superuser_exports_every_merchant(client, runs):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))

    rows = _csv(client.get(EXPORT))

    assert len(rows) - 1 == 4


def test_an_uploaded_statement_is_reconciled_by_a_task_after_commit(
    client, manager, books, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(services, "statement_parser", lambda **kwargs: statement_parse)
    payment = books.payment(status="created", amount="8.80")
    upload = SimpleUploadedFile("bill.csv", statement([trade(payment)]), content_type="text/csv")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(UPLOAD, {"provider": "sandbox", "statement_date": DAY.isoformat(), "statement": upload})

    run = ReconciliationRun.objects.get()
    assert len(callbacks) == 1
    assert response.status_code == 302
    assert response.url == reverse("admin:orders_reconciliationrun_change", args=[run.pk])
    page = client.get(response.url)
    assert b"being reconciled in the background" in page.content
    assert (run.status, run.source, run.started_by, run.healed) == ("succeeded", "upload", manager, 1)
    payment.refresh_from_db()
    assert payment.status == "paid"


def test_the_same_upload_again_is_not_reconciled_twice(
    client, manager, books, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(services, "statement_parser", lambda **kwargs: statement_parse)
    data = statement([trade(books.payment(paid_at=NOON))])
    form = {"provider": "sandbox", "statement_date": DAY.isoformat()}
    with django_capture_on_commit_callbacks(execute=True):
        client.post(UPLOAD, {**form, "statement": SimpleUploadedFile("a.csv", data)})

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(UPLOAD, {**form, "statement": SimpleUploadedFile("b.csv", data)}, follow=True)

    assert callbacks == []
    assert ReconciliationRun.objects.count() == 1
    assert b"reconciled before; nothing changed" in response.content


def test_an_upload_needs_a_file_a_provider_and_a_day(client, manager):
    response = client.post(UPLOAD, {"provider": "paypal", "statement_date": "yesterday"})

    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"provider", "statement_date", "statement"}
    assert not ReconciliationRun.objects.exists()


def test_the_stale_run_sweep_finds_uploads_left_running(books, monkeypatch):
    run = ReconciliationRun.objects.create(
        merchant=books.merchant, provider="sandbox", statement_date=DAY, source="upload", file_sha256="0" * 64,
        statement_file="reconciliation/x.statement",
    )
    ReconciliationRun.objects.filter(pk=run.pk).update(created_at=run.created_at - timedelta(hours=2))

    assert services.reconciliation_runs_stale() == [run.pk]


def test_an_upload_whose_file_is_gone_fails_and_the_same_file_uploaded_again_runs(
    client, manager, books, monkeypatch, django_capture_on_commit_callbacks
):
    from django.core.files.storage import default_storage

    monkeypatch.setattr(services, "statement_parser", lambda **kwargs: statement_parse)
    data = statement([trade(books.payment(paid_at=NOON))])
    form = {"provider": "sandbox", "statement_date": DAY.isoformat()}
    with django_capture_on_commit_callbacks(execute=False) as queued:
        client.post(UPLOAD, {**form, "statement": SimpleUploadedFile("a.csv", data)})
    run = ReconciliationRun.objects.get()
    default_storage.delete(run.statement_file)  # lost before the worker got to it

    queued[0]()
    run.refresh_from_db()
    assert (run.status, run.error) == ("failed", "The uploaded statement file is gone; upload it again.")

    with django_capture_on_commit_callbacks(execute=True):
        client.post(UPLOAD, {**form, "statement": SimpleUploadedFile("b.csv", data)})
    run.refresh_from_db()
    assert (run.status, run.matched, run.error) == ("succeeded", 1, "")
