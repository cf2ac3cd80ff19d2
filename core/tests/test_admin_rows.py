"""The lean row renderer (core/admin/rows.py) gives the same HTML as Django's
``items_for_result``, row for row, on the lists that use it."""

import re
from datetime import date
from decimal import Decimal

import pytest
from django.contrib import admin
from django.test import Client

from accounts.models import User
from core.admin.rows import lean_results
from loans.models import Customer, LoanAccount
from tests.factories import BranchFactory, UserFactory, make_customer, make_loan

pytestmark = pytest.mark.django_db

TABLE = re.compile(r'<table id="result_list">.*?</table>', re.S)


@pytest.fixture
def rows():
    branch = BranchFactory(name='Pune <Camp> & "Co"')
    odd = make_customer(branch=branch)
    # what an old import could have stored: markup, quotes, ampersands, surrounding blanks
    Customer.objects.filter(pk=odd.pk).update(name='  O\'Brien & <b>Sons</b> "Ltd"  ')
    make_loan(
        customer=odd,
        sanctioned_amount=Decimal("1234567.89"),
        disbursed_amount=Decimal("1234567.89"),
    )
    closed = make_loan(branch=branch, disbursed_on=date(2025, 12, 31))
    LoanAccount.objects.filter(pk=closed.pk).update(status=LoanAccount.Status.CLOSED)
    for _ in range(3):
        make_loan(branch=branch)
    return branch


def _tables(client, url, monkeypatch, model) -> tuple[str, str]:
    """The result table of ``url`` from the lean renderer, then from Django's."""
    lean = client.get(url)
    assert lean.status_code == 200
    model_admin = admin.site._registry[model]
    assert model_admin.lean_rows
    monkeypatch.setattr(model_admin, "lean_rows", False)
    monkeypatch.setattr(model_admin, "change_list_template", None)
    django = client.get(url)
    assert "admin/lean_change_list.html" not in [t.name for t in django.templates]
    return TABLE.search(lean.content.decode())[0], TABLE.search(django.content.decode())[0]


@pytest.mark.parametrize(
    "query",
    ["", "?status__exact=CLOSED", "?q=O%27Brien&o=2", "?disbursed_on__gte=2025-01-01&p=1"],
)
def test_the_loan_rows_are_djangos_byte_for_byte(rows, query, monkeypatch):
    client = Client()
    client.force_login(UserFactory(role="Operations", level=User.Level.HEAD_OFFICE))
    lean, django = _tables(client, f"/admin/loans/loanaccount/{query}", monkeypatch, LoanAccount)
    assert lean == django
    assert "&lt;b&gt;Sons&lt;/b&gt; &quot;Ltd&quot;" in lean or query == "?status__exact=CLOSED"
    assert "_changelist_filters=" in lean or not query  # the links keep the filters


def test_the_customer_rows_are_djangos_byte_for_byte(rows, monkeypatch):
    client = Client()
    client.force_login(UserFactory(role="Operations", level=User.Level.HEAD_OFFICE))
    lean, django = _tables(client, "/admin/loans/customer/", monkeypatch, Customer)
    assert lean == django
    assert lean.count("<tr") == Customer.objects.count() + 1  # the header row too


def test_a_list_it_cannot_plan_falls_back_to_djangos_rows(rows, rf):
    """A popup list (and list_editable) keep Django's renderer: the same rows come back."""
    from django.contrib.admin.templatetags.admin_list import results

    model_admin = admin.site._registry[LoanAccount]
    request = rf.get("/admin/loans/loanaccount/", {"_popup": "1"})
    request.user = UserFactory(role="Operations", level=User.Level.HEAD_OFFICE)
    cl = model_admin.get_changelist_instance(request)
    cl.formset = None  # as changelist_view sets it
    assert cl.is_popup
    assert [list(r) for r in lean_results(cl)] == [list(r) for r in results(cl)]
    assert 'data-popup-opener="' in "".join(str(c) for r in lean_results(cl) for c in r)
