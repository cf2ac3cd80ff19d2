"""Reference data in Redis: the real cache, the real database, changes through the admin and
through code, rollbacks, and a Redis that does not answer (a closed port, not a mock).

Most tests commit (``transaction=True``): a cache is shared between connections, and what
it must never hold is what another connection has not committed."""

import datetime
import socket
import threading
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.test import Client, override_settings

from accounts import refdata as branch_refs
from loans import refdata as product_refs
from mandates import refdata as code_refs
from mandates.models import ReturnCodePolicy
from payments import refdata as ledger_refs
from payments import services as payments
from payments.models import LedgerSwitch
from refdata import cache as refdata
from tests.factories import (
    BranchFactory,
    LoanProductFactory,
    UserFactory,
    make_loan,
    payment,
)

committed = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def redis_answers(monkeypatch):
    """Each test starts with Redis trusted and nothing waiting to be announced."""
    monkeypatch.setattr(refdata, "_bypass_until", 0.0)
    monkeypatch.setattr(refdata, "_unannounced", set())


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_down():
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    return override_settings(
        CACHES={
            "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
        }
    )


def _reference_rows():
    branch = BranchFactory(cutoff_time=datetime.time(18, 0), cash_in_hand_limit=Decimal("5000.00"))
    product = LoanProductFactory(bounce_charge=Decimal("450.00"))
    ReturnCodePolicy.objects.update_or_create(
        code="04", defaults={"description": "Balance insufficient", "retryable": True}
    )
    LedgerSwitch.objects.create(pk=1, maintenance=False)
    return branch, product


def _read_all(branch, product):
    return (
        branch_refs.branch(branch.pk),
        product_refs.loan_product(product.pk),
        code_refs.return_code("04"),
        ledger_refs.ledger_state(),
    )


@committed
def test_a_cached_read_runs_no_query_the_second_time(django_assert_num_queries):
    branch, product = _reference_rows()
    with django_assert_num_queries(4):
        first = _read_all(branch, product)
    with django_assert_num_queries(0):
        again = _read_all(branch, product)
    assert again == first
    ref, product_ref, code, ledger = again
    assert (ref.code, ref.cutoff_time, ref.cash_in_hand_limit) == (
        branch.code,
        datetime.time(18, 0),
        Decimal("5000.00"),
    )
    assert product_ref.bounce_charge == Decimal("450.00")
    assert (code.description, code.retryable) == ("Balance insufficient", True)
    assert ledger == ledger_refs.LedgerState(maintenance=False, reason="")

    other = BranchFactory()
    with django_assert_num_queries(1):  # only the one not cached yet
        found = branch_refs.branches([branch.pk, other.pk, 999_999])
    assert set(found) == {branch.pk, other.pk}  # a missing id is simply absent
    assert branch_refs.branch(999_999) is None


@committed
def test_a_change_through_the_admin_or_in_code_is_seen_at_once():
    branch, product = _reference_rows()
    _read_all(branch, product)  # cached
    admin = Client()
    admin.force_login(UserFactory(is_superuser=True))

    response = admin.post(
        "/admin/payments/ledgerswitch/1/change/",
        {"maintenance": "on", "reason": "Month-end close"},
    )
    assert response.status_code == 302
    assert ledger_refs.ledger_state() == ledger_refs.LedgerState(True, "Month-end close")

    response = admin.post(
        f"/admin/accounts/branch/{branch.pk}/change/",
        {
            "code": branch.code,
            "name": branch.name,
            "area": branch.area_id,
            "state": branch.state,
            "cash_in_hand_limit": "7500.00",
            "cash_receipt_limit": str(branch.cash_receipt_limit),
            "cutoff_time": "16:30:00",
            "is_active": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    ref = branch_refs.branch(branch.pk)
    assert (ref.cutoff_time, ref.cash_in_hand_limit) == (datetime.time(16, 30), Decimal("7500"))

    policy = ReturnCodePolicy.objects.get(code="04")
    policy.retryable = False
    policy.save()
    assert code_refs.return_code("04").retryable is False
    ReturnCodePolicy.objects.create(code="01", description="Account closed", retryable=False)
    assert code_refs.return_code("01").description == "Account closed"
    ReturnCodePolicy.objects.filter(code="01").delete()  # a queryset delete sends the signals
    assert code_refs.return_code("01") is None

    product.bounce_charge = Decimal("600.00")
    product.save()
    assert product_refs.loan_product(product.pk).bounce_charge == Decimal("600.00")

    # QuerySet.update() sends no signal: the code that uses it says what changed
    LedgerSwitch.objects.filter(pk=1).update(maintenance=False, reason="upgrade done")
    refdata.changed(ledger_refs.LEDGER)
    assert ledger_refs.ledger_state() == ledger_refs.LedgerState(False, "upgrade done")


@committed
def test_a_change_reaches_the_cache_only_once_committed(django_assert_num_queries):
    branch, product = _reference_rows()
    _read_all(branch, product)

    with pytest.raises(RuntimeError), transaction.atomic():
        LedgerSwitch.objects.filter(pk=1).update(maintenance=True, reason="abandoned")
        refdata.changed(ledger_refs.LEDGER)
        switch = LedgerSwitch.objects.get(pk=1)
        switch.reason = "abandoned twice"
        switch.save()
        # the transaction sees its own change, from the database, and caches nothing
        assert ledger_refs.ledger_state() == ledger_refs.LedgerState(True, "abandoned twice")
        raise RuntimeError("roll back")

    with django_assert_num_queries(0):
        assert ledger_refs.ledger_state() == ledger_refs.LedgerState(False, "")

    seen_meanwhile = []

    def reader():  # another connection, reading while the change is not committed yet
        try:
            seen_meanwhile.append(ledger_refs.ledger_state())
        finally:
            connection.close()

    with transaction.atomic():
        LedgerSwitch.objects.filter(pk=1).update(maintenance=True, reason="close")
        refdata.changed(ledger_refs.LEDGER)
        thread = threading.Thread(target=reader)
        thread.start()
        thread.join()
    assert seen_meanwhile == [ledger_refs.LedgerState(False, "")]  # the old row, now cached...
    assert ledger_refs.ledger_state() == ledger_refs.LedgerState(True, "close")  # ...but not served


@committed
def test_a_maintenance_switch_stops_the_next_posting_at_once(settings):
    settings.PAYMENTS_POSTING_BACKOFF_SECONDS = 0
    LedgerSwitch.objects.create(pk=1)
    loan, principal = make_loan(), UserFactory(is_superuser=True)
    for n in range(2):
        payments.payment_ingest(
            payment=payment(loan, amount="100.00"),
            idempotency_key=f"refdata-{n}",
            principal=principal,
            source="t",
        )
        if n == 0:
            assert payments.payments_post_due() == {"posted": 1}  # the open ledger is cached
            switch = LedgerSwitch.objects.get(pk=1)
            switch.maintenance, switch.reason = True, "close"
            switch.save()
    assert payments.payments_post_due() == {"retry": 1}


@committed
def test_with_redis_down_reads_come_from_postgres_and_changes_wait_to_be_announced(caplog):
    branch, product = _reference_rows()
    expected = _read_all(branch, product)
    with redis_down(), caplog.at_level("WARNING", logger="refdata.cache"):
        assert _read_all(branch, product) == expected
        assert _read_all(branch, product) == expected
    warnings = [r.getMessage() for r in caplog.records if r.name == "refdata.cache"]
    assert len(warnings) == 1, warnings  # then Redis is left alone for a while
    assert warnings[0].startswith("reference data cache unavailable, reading PostgreSQL")

    # a change committed while Redis is down is announced as soon as it answers
    with redis_down(), caplog.at_level("WARNING", logger="refdata.cache"):
        switch = LedgerSwitch.objects.get(pk=1)
        switch.maintenance, switch.reason = True, "close"
        switch.save()  # commits; the announcement fails and waits
        assert ledger_refs.ledger_state().maintenance is True  # from Postgres
    assert any("not yet announced" in r.getMessage() for r in caplog.records)
    assert cache.get(refdata._key(ledger_refs.LEDGER, "version")) is not None  # Redis is back
    refdata._bypass_until = 0.0  # the back-off is over
    assert ledger_refs.ledger_state().maintenance is True  # announced first, never the old value
    assert refdata._unannounced == set()
