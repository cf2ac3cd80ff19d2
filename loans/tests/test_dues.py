"""Dues and overdue: the pure function at every bucket boundary, the services that keep a
loan's figures current (a posting, a reversal, a charge raised or waived, a new loan), the
nightly set-based refresh (equal to the per-loan function, guarded once per date), and the
admin's bucket filter and DPD sort, scoped."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from core.jobs import job_claim
from core.models import JobRun
from core.money import inr
from loans import services
from loans.dues import Dues, bucket_for, dpd_range, dues_of
from loans.models import Instalment, LoanAccount
from payments.services import payment_reverse, payments_post_due
from tests.factories import UserFactory, bounce_charge, make_loan, pay

D = Decimal
TODAY = date(2026, 12, 7)
ZERO, PRINCIPAL, INTEREST = D("0.00"), D("900.00"), D("100.00")


@dataclass
class Inst:
    """An instalment as the pure function sees it."""

    number: int
    due_date: date
    principal_due: Decimal = PRINCIPAL
    interest_due: Decimal = INTEREST
    charges_due: Decimal = ZERO
    principal_paid: Decimal = ZERO
    interest_paid: Decimal = ZERO
    charges_paid: Decimal = ZERO


# --- The pure function ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "bucket"),
    [
        (0, "CURRENT"),
        (1, "SMA0"),
        (30, "SMA0"),
        (31, "SMA1"),
        (60, "SMA1"),
        (61, "SMA2"),
        (90, "SMA2"),
        (91, "NPA"),
    ],
)
def test_the_bucket_at_each_boundary_of_days_past_due(days, bucket):
    dues = dues_of([Inst(1, TODAY - timedelta(days=days))], TODAY)
    assert (dues.dpd, dues.bucket) == (days, bucket)
    assert bucket_for(days) == bucket


def test_each_buckets_dpd_range_gives_that_bucket():
    assert [dpd_range(b) for b in ("CURRENT", "SMA0", "SMA1", "SMA2", "NPA")] == [
        (0, 0),
        (1, 30),
        (31, 60),
        (61, 90),
        (91, None),
    ]


def test_an_instalment_due_today_is_due_not_overdue():
    dues = dues_of([Inst(1, TODAY), Inst(2, TODAY + timedelta(days=31))], TODAY)
    assert dues == Dues(TODAY, D("1000.00"), D("0.00"), D("0.00"), D("0.00"), 0, "CURRENT")


def test_partial_payments_count_what_is_unpaid_and_the_oldest_unpaid_due_sets_the_dpd():
    first = Inst(1, TODAY - timedelta(days=45), interest_paid=D("100.00"), principal_paid=D("400"))
    second = Inst(2, TODAY - timedelta(days=15))
    upcoming = Inst(3, TODAY + timedelta(days=16), interest_paid=D("100.00"))  # an advance
    dues = dues_of([upcoming, second, first], TODAY)
    assert (dues.overdue_principal, dues.overdue_interest) == (D("1400.00"), D("100.00"))
    assert (dues.dpd, dues.bucket) == (45, "SMA1")
    assert (dues.next_due_date, dues.next_due_amount) == (upcoming.due_date, D("900.00"))

    first.principal_paid = D("900.00")  # the oldest is paid up: the next one sets the DPD
    dues = dues_of([first, second, upcoming], TODAY)
    assert (dues.dpd, dues.bucket, dues.overdue_amount) == (15, "SMA0", D("1000.00"))


def test_unpaid_charges_keep_an_instalment_overdue_and_count_as_arrears():
    paid_but_charged = Inst(
        1,
        TODAY - timedelta(days=70),
        charges_due=D("590.00"),
        principal_paid=D("900.00"),
        interest_paid=D("100.00"),
    )
    dues = dues_of([paid_but_charged, Inst(2, TODAY + timedelta(days=1))], TODAY)
    assert dues.overdue_charges == D("590.00") and dues.overdue_amount == D("590.00")
    assert (dues.dpd, dues.bucket) == (70, "SMA2")


def test_the_next_due_skips_an_instalment_paid_in_advance_and_a_finished_schedule_has_none():
    paid = {"principal_paid": D("900.00"), "interest_paid": D("100.00")}
    ahead = [Inst(1, TODAY + timedelta(days=5), **paid), Inst(2, TODAY + timedelta(days=36))]
    assert dues_of(ahead, TODAY).next_due_date == TODAY + timedelta(days=36)
    done = dues_of([Inst(1, TODAY - timedelta(days=5), **paid)], TODAY)
    assert done == Dues(None, D("0.00"), D("0.00"), D("0.00"), D("0.00"), 0, "CURRENT")


# --- Kept current by the services -------------------------------------------------------

DUES_FIELDS = services.DUES_FIELDS


def _figures(loan: LoanAccount) -> tuple:
    loan.refresh_from_db()
    return tuple(getattr(loan, name) for name in DUES_FIELDS)


def _expected(loan: LoanAccount, as_of: date) -> tuple:
    dues = dues_of(loan.instalments.all(), as_of)
    return tuple(getattr(dues, name) for name in DUES_FIELDS)


def _overdue_loan(days_overdue: int, **terms) -> LoanAccount:
    """A monthly loan whose first instalment fell due ``days_overdue`` days ago (unpaid)."""
    today = timezone.localdate()
    loan = make_loan(disbursed_on=today - timedelta(days=days_overdue + 45), **terms)
    for inst in loan.instalments.order_by("number"):
        due = today - timedelta(days=days_overdue) + timedelta(days=30 * (inst.number - 1))
        Instalment.objects.filter(pk=inst.pk).update(due_date=due)
    with transaction.atomic():
        services.loan_dues_refresh(loan=LoanAccount.objects.select_for_update().get(pk=loan.pk))
    loan.refresh_from_db()
    return loan


@pytest.mark.django_db
def test_a_new_loan_has_its_dues_from_its_schedule():
    today = timezone.localdate()
    loan = make_loan(disbursed_on=today)
    first = loan.instalments.order_by("number").first()
    assert (loan.next_due_date, loan.next_due_amount) == (first.due_date, first.total_due)
    assert (loan.dpd, loan.bucket, loan.overdue_amount) == (0, "CURRENT", D("0.00"))
    assert loan.dues_as_of == today


@pytest.mark.django_db
def test_a_posting_refreshes_the_dues_and_the_last_payment_and_a_reversal_undoes_both():
    loan = _overdue_loan(40)
    assert (loan.dpd, loan.bucket) == (40, "SMA1")
    first = loan.instalments.order_by("number").first()
    txn_id = pay(loan, str(first.total_due), day=timezone.localdate())
    assert payments_post_due() == {"posted": 1}

    today = timezone.localdate()
    assert _figures(loan) == _expected(loan, today)
    assert (loan.dpd, loan.bucket) == (10, "SMA0")  # the second instalment is the oldest now
    assert (loan.last_payment_date, loan.last_payment_amount) == (today, first.total_due)

    with transaction.atomic():
        payment_reverse(txn_id=txn_id, actor=UserFactory(role="Finance"))
    assert _figures(loan) == _expected(loan, today)
    assert (loan.dpd, loan.bucket) == (40, "SMA1")
    assert (loan.last_payment_date, loan.last_payment_amount) == (None, D("0.00"))


@pytest.mark.django_db
def test_a_bounce_charge_raised_and_waived_moves_the_arrears():
    loan = _overdue_loan(5)
    before = loan.overdue_amount
    charge = bounce_charge(loan)
    assert _figures(loan) == _expected(loan, timezone.localdate())
    assert (loan.overdue_charges, loan.overdue_amount) == (D("590.00"), before + D("590.00"))
    with transaction.atomic():
        services.loan_charge_waive(charge_id=charge.pk, actor=UserFactory(role="Area Manager"))
    loan.refresh_from_db()
    assert (loan.overdue_charges, loan.overdue_amount) == (D("0.00"), before)


# --- The nightly refresh ----------------------------------------------------------------


@pytest.mark.django_db
def test_the_nightly_refresh_moves_a_loan_into_the_next_bucket_as_the_date_moves():
    loan = _overdue_loan(0)  # its first instalment falls due today
    oldest = loan.next_due_date
    for days, bucket in [(0, "CURRENT"), (1, "SMA0"), (30, "SMA0"), (31, "SMA1"), (91, "NPA")]:
        services.loans_dues_refresh(as_of=oldest + timedelta(days=days))
        loan.refresh_from_db()
        assert (loan.dpd, loan.bucket, loan.dues_as_of) == (
            days,
            bucket,
            oldest + timedelta(days=days),
        )


@pytest.mark.django_db
def test_the_set_based_refresh_equals_the_per_loan_function_on_a_mixed_set():
    today = timezone.localdate()
    loans = [
        make_loan(disbursed_on=today),  # current
        make_loan(disbursed_on=today - timedelta(days=200)),  # months behind
        make_loan(disbursed_on=today - timedelta(days=400), tenure_months=6),  # all fallen due
        _overdue_loan(31),
        _overdue_loan(75),
    ]
    pay(loans[1], "5000.00", day=today)  # part of the oldest instalment
    pay(loans[3], "30000.00", day=today)  # the arrears and some in advance
    assert payments_post_due() == {"posted": 2}
    bounce_charge(loans[4])
    written_off = make_loan(disbursed_on=today - timedelta(days=200))
    LoanAccount.objects.filter(pk=written_off.pk).update(status="WRITTEN_OFF", dpd=7)

    for as_of in (today, today + timedelta(days=17), today + timedelta(days=95)):
        written = services.loans_dues_refresh(as_of=as_of)
        assert written == len(loans)
        for loan in loans:
            assert _figures(loan) == _expected(loan, as_of), (loan, as_of)
            assert loan.dues_as_of == as_of
        # the per-loan service agrees with what the set-based one wrote
        for loan in loans:
            with transaction.atomic():
                services.loan_dues_refresh(
                    loan=LoanAccount.objects.select_for_update().get(pk=loan.pk), as_of=as_of
                )
            assert _figures(loan) == _expected(loan, as_of)
    written_off.refresh_from_db()
    assert written_off.dpd == 7  # not an active loan: left alone


@pytest.mark.django_db
def test_the_job_runs_once_per_date_and_a_killed_run_resumes_after_its_checkpoint():
    today = timezone.localdate()
    first, second = _overdue_loan(3), _overdue_loan(4)
    tomorrow = today + timedelta(days=1)

    run = services.loans_dues_daily(as_of=tomorrow)
    assert run.state == JobRun.State.DONE and run.counts == {"loans": 2}
    assert services.loans_dues_daily(as_of=tomorrow) is None  # once per date
    first.refresh_from_db()
    assert (first.dpd, first.dues_as_of) == (4, tomorrow)

    # a run of the next date whose worker died after the first range: its lease ran out
    later = today + timedelta(days=2)
    dead = job_claim(name=services.DUES_JOB, key=later, lease=timedelta(seconds=-1))
    JobRun.objects.filter(pk=dead.pk).update(progress={"after_id": first.pk})
    run = services.loans_dues_daily(as_of=later)
    assert run.attempts == 2 and run.state == JobRun.State.DONE
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.dues_as_of == tomorrow  # before the checkpoint: not written again
    assert (second.dpd, second.dues_as_of) == (6, later)

    forced = services.loans_dues_daily(as_of=later, force=True)  # the command's rerun
    first.refresh_from_db()
    assert forced.attempts == 3 and first.dues_as_of == later


@pytest.mark.django_db
def test_the_command_refreshes_as_of_a_date(capsys):
    loan = _overdue_loan(10)
    call_command("loan_dues_refresh", "--date", (loan.dues_as_of + timedelta(days=25)).isoformat())
    assert "1 loans written" in capsys.readouterr().out
    loan.refresh_from_db()
    assert (loan.dpd, loan.bucket) == (35, "SMA1")


@pytest.mark.django_db(transaction=True)
def test_the_nightly_task_runs_through_an_embedded_worker():
    from celery.contrib.testing.worker import start_worker

    from config.celery import app
    from loans.tasks import loans_dues_nightly_task

    loan = _overdue_loan(2)
    as_of = timezone.localdate() + timedelta(days=30)
    with start_worker(app, perform_ping_check=False, pool="solo", shutdown_timeout=10):
        loans_dues_nightly_task.delay(as_of.isoformat())
        deadline = time.monotonic() + 30
        while not JobRun.objects.filter(name=services.DUES_JOB, state="DONE").exists():
            assert time.monotonic() < deadline, "the nightly refresh did not run"
            time.sleep(0.2)
    loan.refresh_from_db()
    assert (loan.dpd, loan.bucket) == (32, "SMA1")


# --- The admin --------------------------------------------------------------------------


def _changelist(client, query: str = ""):
    response = client.get(reverse("admin:loans_loanaccount_changelist") + query)
    assert response.status_code == 200
    return response.context["cl"]


def _shown(client, query: str) -> list[str]:
    return [loan.loan_number for loan in _changelist(client, query).result_list]


@pytest.mark.django_db
def test_the_bucket_filter_and_dpd_sort_show_only_the_users_branch(client, world):
    own, near = world.branches["own"], world.branches["near"]
    mine = {days: _overdue_loan(days, branch=own) for days in (5, 45, 95)}
    theirs = {days: _overdue_loan(days, branch=near) for days in (6, 46, 96)}
    client.force_login(world.users["BS"])

    visible = LoanAccount.objects.filter(branch=own)  # with the world's loan there
    for bucket in ("SMA0", "SMA1", "NPA"):
        shown = _shown(client, f"?bucket={bucket}")
        assert set(shown) == {loan.loan_number for loan in visible.filter(bucket=bucket)}
    assert mine[95].loan_number in shown and theirs[96].loan_number not in shown
    dpd_column = _changelist(client).list_display.index("dpd")  # ?o= counts the checkbox
    by_dpd = _shown(client, f"?o=-{dpd_column}")
    assert by_dpd == list(visible.order_by("-dpd", "-id").values_list("loan_number", flat=True))
    assert by_dpd[0] == mine[95].loan_number
    assert _shown(client, f"?o={dpd_column}") == by_dpd[::-1]
    # a bucket sorted by DPD: the same loans (filtered on the bucket's DPD range), in order
    for bucket in ("SMA0", "SMA1", "NPA"):
        expected = visible.filter(bucket=bucket).order_by("-dpd", "-id")
        shown = _shown(client, f"?bucket={bucket}&o=-{dpd_column}")
        assert shown == list(expected.values_list("loan_number", flat=True))

    client.force_login(world.users["OP"])  # head office: every branch's loans in the bucket
    assert set(_shown(client, "?bucket=NPA")) == {
        mine[95].loan_number,
        theirs[96].loan_number,
    }


@pytest.mark.django_db
def test_the_loan_page_shows_the_dues_panel_and_overdue_instalments(client, world):
    loan = _overdue_loan(40, branch=world.branches["own"])
    client.force_login(world.users["BS"])
    page = client.get(reverse("admin:loans_loanaccount_change", args=[loan.pk])).content.decode()
    assert "Dues" in page and "SMA-1 (31-60)" in page
    assert inr(loan.overdue_amount) in page and loan.overdue_amount > 0
    statuses = re.findall(r'<td class="field-status_shown">\s*<p>(.*?)</p>', page, re.S)
    assert statuses[:3] == ['<strong class="overdue">Overdue</strong>'] * 2 + ["Due"]

    instalments = reverse("admin:loans_instalment_changelist")
    response = client.get(f"{instalments}?status=OVERDUE")
    shown = {i.pk for i in response.context["cl"].result_list}
    overdue = Instalment.objects.filter(
        loan__branch=world.branches["own"], due_date__lt=timezone.localdate()
    ).exclude(status="PAID")
    assert shown == set(overdue.values_list("pk", flat=True))
    assert set(loan.instalments.filter(number__in=[1, 2]).values_list("pk", flat=True)) <= shown
