import csv
import io
import json
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from openpyxl import load_workbook

from reconciliation import services
from reconciliation.models import Dbs, Deposit
from tests.factories import (
    AreaFactory,
    UserFactory,
    branch_with_loan,
    collection_account,
    days_ago,
    deposit,
    pay,
)

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def submitted():
    """A submitted DCR with two receipts, and its area's approver."""
    branch, loan = branch_with_loan()
    txns = [pay(loan, "120.00"), pay(loan, "80.00", mode="UPI", collector="Agent Z")]
    dcr = services.dcr_build(branch_id=branch.pk, business_date=days_ago(1))
    maker = UserFactory(role="Branch Manager", home_branch=branch)
    services.dcr_submit(dcr_id=dcr.pk, actor=maker)
    return dcr, txns, maker, UserFactory(role="Area Manager", home_area=branch.area)


def test_the_inbox_lists_dcrs_and_dbss_for_the_right_approver_only(submitted):
    dcr, _, maker, approver = submitted
    dbs = Dbs.objects.get(branch=dcr.branch, business_date=dcr.business_date)
    services.dbs_submit(dbs_id=dbs.pk, actor=maker)
    dcr_url = reverse("reconciliation:dcr", args=[dcr.pk])
    dbs_url = reverse("reconciliation:dbs", args=[dbs.pk])
    inbox = reverse("approvals:inbox")

    page = client_for(approver).get(inbox).content.decode()
    assert dcr_url in page and dbs_url not in page  # DBSs are for finance
    page = client_for(UserFactory(role="Finance")).get(inbox).content.decode()
    assert dbs_url in page and dcr_url not in page
    for nobody in (
        maker,
        UserFactory(role="Area Manager", home_area=AreaFactory()),
    ):  # the submitter; another area's approver
        page = client_for(nobody).get(inbox).content.decode()
        assert dcr_url not in page and dbs_url not in page


def test_the_detail_page_drills_down_to_every_receipt_and_late_arrivals(submitted):
    dcr, txns, _, approver = submitted
    late = pay(dcr.branch.loans.first(), "5.00")
    services.dcr_build(branch_id=dcr.branch_id, business_date=dcr.business_date)
    response = client_for(approver).get(reverse("reconciliation:dcr", args=[dcr.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    for txn_id in [*txns, late]:
        assert txn_id in page
    assert page.count('class="receipt"') == 3
    assert page.count('class="late-arrival"') == 1
    assert "Agent Z" in page and 'id="decision-form"' in page


def test_approve_and_return_through_the_detail_page(submitted):
    dcr, _, maker, approver = submitted
    url = reverse("reconciliation:dcr_decide", args=[dcr.pk])
    response = client_for(approver).post(url, {"decision": "return", "remarks": ""})
    assert response.status_code == 200 and "Say why you return it." in response.content.decode()
    response = client_for(maker).post(url, {"decision": "approve"}, follow=True)
    assert "another person must approve" in response.content.decode()
    dcr.refresh_from_db()
    assert dcr.status == "SUBMITTED"
    response = client_for(approver).post(url, {"decision": "approve"})
    assert response.status_code == 302
    dcr.refresh_from_db()
    assert (dcr.status, dcr.decided_by) == ("APPROVED", approver)
    response = client_for(UserFactory(role="Area Manager", home_area=dcr.branch.area)).post(
        url, {"decision": "approve"}, follow=True
    )
    assert "already approved by" in response.content.decode()


def test_a_dcr_of_another_area_is_a_404(submitted):
    dcr, *_ = submitted
    response = client_for(UserFactory(role="Area Manager", home_area=AreaFactory())).get(
        reverse("reconciliation:dcr", args=[dcr.pk])
    )
    assert response.status_code == 404


def test_the_dashboard_charts_only_the_approvers_scope():
    mine, my_loan = branch_with_loan()
    other, other_loan = branch_with_loan()
    for branch, loan in ((mine, my_loan), (other, other_loan)):
        pay(loan, "150.00", day=days_ago(2))
        services.dcr_build(branch_id=branch.pk, business_date=days_ago(2))
    response = client_for(UserFactory(role="Area Manager", home_area=mine.area)).get(
        reverse("reconciliation:dashboard")
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "vendor/chartjs/chart.umd.min.js" in page
    charts = json.loads(
        page.split('id="recon-charts" type="application/json">')[1].split("</script>")[0]
    )
    cash = charts["per_day"]["datasets"][0]
    assert cash["label"] == "CASH"
    assert cash["data"][-3] == "150.00"  # strings, never floats; only my branch's 150.00
    assert charts["cash"]["labels"] == [mine.code]
    assert other.code not in page


def test_the_chart_library_is_served_as_a_static_file(settings):
    from django.contrib.staticfiles import finders

    assert finders.find("vendor/chartjs/chart.umd.min.js")
    settings.WHITENOISE_USE_FINDERS = True
    settings.WHITENOISE_AUTOREFRESH = True
    response = Client().get("/static/vendor/chartjs/chart.umd.min.js")
    assert response.status_code == 200
    assert b"Chart" in b"".join(response.streaming_content)


def test_csv_and_excel_exports_of_the_visible_lists(submitted):
    dcr, _, maker, approver = submitted
    other, loan = branch_with_loan()
    pay(loan, "999.00")
    services.dcr_build(branch_id=other.pk, business_date=days_ago(1))
    client = client_for(approver)

    text = client.get(reverse("reconciliation:export", args=["dcr", "csv"])).content.decode()
    rows = [line.split(",") for line in text.strip().splitlines()]
    assert rows[0][:7] == [
        "Branch", "Branch name", "Business date", "Status", "Provisional", "Receipts", "Collected",
    ]  # fmt: skip
    assert [row[0] for row in rows[1:]] == [dcr.branch.code]
    assert rows[1][6] == "200.00" and rows[1][7] == "120.00"  # collected, CASH

    response = client.get(reverse("reconciliation:export", args=["dbs", "xlsx"]))
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(response.content)).active
    values = list(sheet.iter_rows(values_only=True))
    assert values[0][0] == "Branch" and len(values) == 2
    assert values[1][0] == dcr.branch.code
    assert Decimal(str(values[1][5])) == Decimal("120.00")  # cash collected


def test_the_statement_upload_page_lists_each_bad_line():
    account = collection_account()
    client = client_for(UserFactory(role="Finance"))
    response = client.post(
        reverse("reconciliation:statement_upload"),
        {
            "collection_account": account.pk,
            "file": SimpleUploadedFile("s.csv", b"date,narration,reference,credit\nxx,A,S1,1\n"),
        },
    )
    assert response.status_code == 400
    assert "Line 2:" in response.content.decode()
    deposit_ = deposit(*branch_with_loan()[:1], account, "10.00", slip="OK-1")
    day = deposit_.deposit_date.isoformat()
    response = client.post(
        reverse("reconciliation:statement_upload"),
        {
            "collection_account": account.pk,
            "file": SimpleUploadedFile(
                "s.csv", f"date,narration,reference,credit\n{day},A,OK-1,10.00\n".encode()
            ),
        },
        follow=True,
    )
    assert 'id="matched-count">1<' in response.content.decode()


def test_branch_staff_add_a_deposit_in_the_admin_for_their_branch_only(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    branch, _ = branch_with_loan()
    other, _ = branch_with_loan()
    account = collection_account()
    user = UserFactory(role="Branch Staff", home_branch=branch)
    client = client_for(user)
    add = reverse("admin:reconciliation_deposit_add")
    form = client.get(add).content.decode()
    assert f'value="{branch.pk}"' in form and f'value="{other.pk}"' not in form
    fields = {
        "branch": branch.pk,
        "deposit_date": days_ago(0).isoformat(),
        "collection_account": account.pk,
        "slip_number": "ADM-1",
        "amount": "250.00",
        "slip_scan": SimpleUploadedFile("slip.png", b"\x89PNG\r\n\x1a\n0000"),
    }
    response = client.post(add, fields)
    assert response.status_code == 302, response.content.decode()[:2000]
    saved = Deposit.objects.get()
    assert (saved.recorded_by, saved.amount, saved.branch) == (user, Decimal("250.00"), branch)
    assert Dbs.objects.get(branch=branch, business_date=days_ago(0)).deposits_total == Decimal(
        "250"
    )
    response = client.post(add, {**fields, "slip_scan": "", "amount": "-1"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "already used" in page and "more than zero" in page
    response = client.post(
        add, {**fields, "branch": other.pk, "slip_number": "ADM-2", "slip_scan": ""}
    )
    assert response.status_code == 200 and Deposit.objects.count() == 1


def test_changelists_make_a_fixed_number_of_queries(django_assert_max_num_queries):
    approver = UserFactory(role="Area Manager", home_area=AreaFactory())
    client = client_for(approver)
    for _ in range(3):
        branch, loan = branch_with_loan(area=approver.home_area)
        pay(loan)
        services.dcr_build(branch_id=branch.pk, business_date=days_ago(1))
        deposit(branch, collection_account(), "1.00", slip=f"Q-{branch.pk}")
    for name in ("dcr", "dbs", "deposit"):
        url = reverse(f"admin:reconciliation_{name}_changelist")
        client.get(url)  # warm caches (content types, permissions)
        with django_assert_max_num_queries(20):
            assert client.get(url).status_code == 200


def test_exports_write_remarks_as_text_never_as_formulas(submitted):
    dcr, _, _, approver = submitted
    remarks = '=HYPERLINK("http://evil.example","Click") @SUM(A1:A9)'
    services.dcr_return(dcr_id=dcr.pk, actor=approver, remarks=remarks)
    client = client_for(approver)

    response = client.get(reverse("reconciliation:export", args=["dcr", "csv"]))
    rows = list(csv.reader(io.StringIO(response.content.decode(), newline="")))
    assert rows[1][-1] == f"'{remarks}"

    response = client.get(reverse("reconciliation:export", args=["dcr", "xlsx"]))
    sheet = load_workbook(io.BytesIO(response.content)).active
    cell = next(sheet.iter_rows(min_row=2))[-1]
    assert cell.data_type == "s" and cell.value == remarks


def test_a_statement_file_uploaded_twice_is_refused_with_a_message_on_the_file():
    account = collection_account()
    client = client_for(UserFactory(role="Finance"))
    url = reverse("reconciliation:statement_upload")
    text = b"date,narration,reference,credit\n2026-01-02,CASH\x00DEP,S1,10.00\n"
    response = client.post(
        url, {"collection_account": account.pk, "file": SimpleUploadedFile("n.csv", text)}
    )
    assert response.status_code == 400  # a NUL: a bad line, not a 500
    assert "Line 2:" in response.content.decode() and "NUL" in response.content.decode()

    text = b"date,narration,reference,credit\n2026-01-02,CASH DEP,S1,10.00\n"
    for expected in (302, 400):
        response = client.post(
            url, {"collection_account": account.pk, "file": SimpleUploadedFile("s.csv", text)}
        )
        assert response.status_code == expected
    assert "already imported" in str(response.context["form"].errors["file"])


@pytest.mark.parametrize(
    "query",
    [
        {"branch": "B1\x00"},
        {"branch": "x" * 2000},
        {"branch": "\u0661\u0665"},
        {"branch": "'"},
        {"from": "2026-01-01\x00"},
        {"to": "\u0662\u0660\u0662\u0666-01-01"},
        {"from": "yesterday"},
    ],
)
@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_bad_export_filters_are_a_400_with_a_message(query, fmt):
    client = client_for(UserFactory(role="Finance"))
    for kind in ("dcr", "dbs"):
        response = client.get(reverse("reconciliation:export", args=[kind, fmt]), query)
        assert response.status_code == 400
        assert next(iter(query)) in response.content.decode()


def test_odd_export_statuses_are_ignored_as_before(submitted):
    dcr, _, _, approver = submitted
    response = client_for(approver).get(
        reverse("reconciliation:export", args=["dcr", "csv"]), {"status": "SUB\x00"}
    )
    assert response.status_code == 200
    assert dcr.branch.code in response.content.decode()


@pytest.mark.parametrize(
    ("field", "typed"),
    [
        ("amount", "\uff11\uff15\uff10\uff10"),  # full-width 1500
        ("amount", "\u0661\u0665\u0660\u0660"),  # Arabic-Indic 1500
        ("deposit_date", "\u0662\u0660\u0662\u0666-01-02"),
        ("collection_account", None),  # its id in Arabic-Indic digits
    ],
)
def test_the_admin_deposit_form_refuses_other_scripts_digits_with_a_field_message(field, typed):
    branch, _ = branch_with_loan()
    account = collection_account()
    if typed is None:
        typed = "".join(chr(0x0660 + int(d)) for d in str(account.pk))
    data = {
        "branch": branch.pk,
        "deposit_date": days_ago(1).isoformat(),
        "collection_account": account.pk,
        "slip_number": "ASCII-1",
        "amount": "1500.00",
        field: typed,
    }
    client = client_for(UserFactory(role="Branch Staff", home_branch=branch))
    url = reverse("admin:reconciliation_deposit_add")
    response = client.post(url, data)
    assert response.status_code == 200
    assert "Use the digits 0-9" in str(response.context["adminform"].form.errors[field])
    assert not Deposit.objects.exists()
    data[field] = {"amount": "1500", "deposit_date": days_ago(1).isoformat()}.get(field, account.pk)
    assert client.post(url, data).status_code == 302
    assert Deposit.objects.get().amount == Decimal("1500.00")
