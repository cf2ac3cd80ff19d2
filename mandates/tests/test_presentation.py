import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import User
from approvals.services import approval_decide
from core.errors import Conflict, NotFound
from core.jobs import job_claim
from core.models import JobRun, OutboxMessage
from core.outbox import outbox_deliver
from loans.models import Instalment, LoanCharge
from loans.services import loan_charge_waiver_request
from mandates import sandbox, selectors, services
from mandates.ddb_models import DUE_DATE_SHARDS, MandateExecutionItem
from mandates.exceptions import ResultRejected
from mandates.models import (
    RESULT_TOPIC,
    BankHoliday,
    ExecutionResult,
    Mandate,
    PresentationBatch,
    SandboxBounceRule,
    ScheduledPresentation,
)
from mandates.services import presentation
from notifications.ddb_models import NotificationItem
from payments.ddb_models import TransactionItem
from payments.models import Posting
from payments.services import payments_post_due
from payments.tests.test_ingest import count_dynamodb_calls
from tests.factories import UserFactory, active_mandate

pytestmark = pytest.mark.django_db


@pytest.fixture
def presentable(world):
    """An active mandate on the loan of ``own`` and its first scheduled presentation."""
    loan, people = world.loans["own"], world.people
    mandate = active_mandate(loan, people)
    first = ScheduledPresentation.objects.filter(mandate=mandate).order_by("due_date").first()
    return {"loan": loan, "people": people, "mandate": mandate, "first": first}


def _present(presentable):
    run = services.mandates_present_due(run_date=presentable["first"].presentation_date)
    presentable["first"].refresh_from_db()
    return run


def _execution(presentable):
    return services.execution_id_for(presentable["first"], presentable["first"].attempts)


def test_schedule_follows_the_loan_and_skips_sundays_and_bank_holidays(presentable):
    rows = list(ScheduledPresentation.objects.filter(mandate=presentable["mandate"]))
    instalments = Instalment.objects.filter(
        loan=presentable["loan"], due_date__gte=timezone.localdate()
    )
    assert {r.instalment_id for r in rows} == {i.pk for i in instalments}
    assert all(r.presentation_date.weekday() != 6 for r in rows)
    first = presentable["first"]
    BankHoliday.objects.create(date=first.presentation_date, name="Bank holiday")
    services.presentations_reschedule()
    first.refresh_from_db()
    assert first.presentation_date > first.due_date
    assert first.presentation_date.weekday() != 6


def test_presentation_creates_executions_batched_per_partner_once_per_date(presentable):
    run = _present(presentable)
    assert run.counts["presented"] == 1
    item = MandateExecutionItem.get(_execution(presentable))
    assert item.status == "PRESENTED" and item.umrn == presentable["mandate"].umrn
    assert item.amount_paise == int(presentable["first"].amount * 100)
    assert PresentationBatch.objects.get().count == 1
    assert presentable["first"].status == "PRESENTED"
    assert services.mandates_present_due(run_date=presentable["first"].presentation_date) is None
    assert MandateExecutionItem.count() == 1


def test_a_pre_debit_notice_goes_out_before_the_presentation(presentable):
    day_before = presentable["first"].presentation_date - timedelta(days=1)
    run = services.mandates_present_due(run_date=day_before)
    assert run.counts["notices"] == 1 and run.counts["presented"] == 0
    notices = [n for n in NotificationItem.scan() if n.template_code == "pre_debit_notice"]
    assert len(notices) == 1
    assert presentable["loan"].loan_number in notices[0].body


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_present_once(presentable):
    barrier = threading.Barrier(2)
    results = []

    def run():
        barrier.wait()
        try:
            results.append(
                services.mandates_present_due(run_date=presentable["first"].presentation_date)
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is not None for r in results) == 1
    assert MandateExecutionItem.count() == 1


def test_a_run_killed_half_way_is_resumed_without_presenting_twice(presentable):
    _present(presentable)
    # As if the run died after writing the execution and before recording it in Postgres:
    ScheduledPresentation.objects.filter(pk=presentable["first"].pk).update(
        status="SCHEDULED", attempts=0
    )
    PresentationBatch.objects.update(count=0, total=0)  # rolled back with the rows
    JobRun.objects.update(state="RUNNING", finished_at=None, lease_until=None)
    run = services.mandates_present_due(run_date=presentable["first"].presentation_date)
    assert run.counts["presented"] == 1
    assert MandateExecutionItem.count() == 1  # the same deterministic execution id


def test_a_run_presents_chunk_by_chunk_and_leaves_executions_already_written(
    presentable, monkeypatch
):
    """Chunks of 2, DynamoDB transactions of 2: a chunk whose transaction meets an execution
    written before (a resumed run) is sent again without it, and the execution written
    before (here with a result) is kept as it is; the lease is renewed after every chunk."""
    monkeypatch.setattr(presentation, "CHUNK", 2)
    monkeypatch.setattr(presentation, "TRANSACTION_ITEMS", 2)
    heartbeats = []
    renew = presentation.job_heartbeat
    monkeypatch.setattr(
        presentation, "job_heartbeat", lambda run, **kw: heartbeats.append(1) or renew(run, **kw)
    )
    day = presentable["first"].presentation_date
    rows = list(
        ScheduledPresentation.objects.filter(mandate=presentable["mandate"]).order_by("id")[:5]
    )
    ScheduledPresentation.objects.filter(pk__in=[r.pk for r in rows]).update(presentation_date=day)
    answered = services.execution_id_for(rows[2], 1)
    MandateExecutionItem(
        answered,
        mandate_id=str(presentable["mandate"].pk),
        due_attempt=f"{rows[2].due_date.isoformat()}#01",
        due_date_shard=f"{rows[2].due_date.isoformat()}#0",
        presentation_id=rows[2].pk,
        loan_number=presentable["loan"].loan_number,
        branch_id=presentable["loan"].branch_id,
        partner_code=presentable["mandate"].banking_partner.code,
        umrn=presentable["mandate"].umrn,
        due_date=rows[2].due_date.isoformat(),
        attempt=1,
        amount_paise=100,
        status="SUCCESS",
        created_at="2026-01-01T00:00:00+05:30",
    ).save()

    with count_dynamodb_calls() as calls:
        run = services.mandates_present_due(run_date=day)

    assert run.counts["presented"] == 5 and len(heartbeats) == 3
    # 3 chunks, the second's sent again without the item found: one write an execution
    assert calls.count("TransactWriteItems") == 4
    assert not {"PutItem", "UpdateItem"} & set(calls)
    assert set(
        ScheduledPresentation.objects.filter(pk__in=[r.pk for r in rows]).values_list(
            "status", "attempts"
        )
    ) == {("PRESENTED", 1)}
    batch = PresentationBatch.objects.get()
    assert batch.count == 5 and batch.total == sum(r.amount for r in rows)
    items = {item.execution_id: item for item in MandateExecutionItem.scan()}
    assert set(items) == {services.execution_id_for(r, 1) for r in rows}
    assert items[answered].status == "SUCCESS" and items[answered].amount_paise == 100
    assert {i.status for k, i in items.items() if k != answered} == {"PRESENTED"}


def test_an_execution_is_written_once_as_presented(presentable):
    """One conditional put an execution, already in its presented form (no second write
    to mark it PRESENTED), that the model reads back whole."""
    with count_dynamodb_calls() as calls:
        _present(presentable)
    assert [c for c in calls if c in {"TransactWriteItems", "PutItem", "UpdateItem"}] == [
        "TransactWriteItems"
    ]
    first, mandate, loan = presentable["first"], presentable["mandate"], presentable["loan"]
    item = MandateExecutionItem.get(_execution(presentable), consistent_read=True)
    due = first.due_date.isoformat()
    assert item.created_at and item.presented_at == item.created_at
    assert {k: v for k, v in item.attribute_values.items() if not k.endswith("_at")} == {
        "execution_id": f"{first.pk}-1",
        "mandate_id": str(mandate.pk),
        "due_attempt": f"{due}#01",
        "due_date_shard": f"{due}#{first.pk % DUE_DATE_SHARDS}",
        "presentation_id": first.pk,
        "loan_number": loan.loan_number,
        "branch_id": loan.branch_id,
        "partner_code": mandate.banking_partner.code,
        "batch_reference": PresentationBatch.objects.get().reference,
        "umrn": mandate.umrn,
        "due_date": due,
        "attempt": 1,
        "amount_paise": int(first.amount * 100),
        "status": "PRESENTED",
    }


class _Killed(Exception):
    """The worker's death, at the partner's hand-over: the chunk's executions are written,
    its Postgres transaction (the hand-over, the presentations marked) never commits."""


def _partner_dies_at_hand_over(monkeypatch, *, call: int) -> list[tuple[list[str], bool]]:
    """The partner's hand-overs as they come, ``(execution ids, committed)``: the
    ``call``-th one dies; the run's job is then left as a killed worker leaves it
    (RUNNING, its lease run out)."""
    handed: list[tuple[list[str], bool]] = []
    real = presentation.adapter_for

    class Dying:
        def __init__(self, code):
            self.adapter = real(code)

        def present(self, *, batch_reference, debits):
            ids = [d.execution_id for d in debits]
            if len(handed) + 1 == call:
                handed.append((ids, False))
                raise _Killed
            handed.append((ids, True))
            self.adapter.present(batch_reference=batch_reference, debits=debits)

    monkeypatch.setattr(presentation, "adapter_for", Dying)
    return handed


def _as_if_killed():
    JobRun.objects.update(
        state="RUNNING", finished_at=None, lease_until=timezone.now() - timedelta(seconds=1)
    )


def test_a_run_killed_between_the_dynamodb_writes_and_the_commit_presents_on_resume(
    presentable, monkeypatch
):
    """The execution is written PRESENTED, then the worker dies before the Postgres commit:
    nothing was presented, and until the resumed run presents it no reader takes the
    item's word for it (a result is refused, the response file's check does not know it,
    the mandate's page reads NOT PRESENTED). The resumed run presents it under the same id,
    keeps the item written before, and counts it once."""
    first, mandate = presentable["first"], presentable["mandate"]
    execution_id, partner = services.execution_id_for(first, 1), mandate.banking_partner.code
    handed = _partner_dies_at_hand_over(monkeypatch, call=1)
    with pytest.raises(_Killed):
        services.mandates_present_due(run_date=first.presentation_date)
    _as_if_killed()

    first.refresh_from_db()
    assert (first.status, first.attempts) == ("SCHEDULED", 0)
    assert PresentationBatch.objects.get().count == 0
    written = MandateExecutionItem.get(execution_id, consistent_read=True)
    assert written.status == "PRESENTED"  # the item's word, not the truth
    with pytest.raises(NotFound) as refused:
        services.execution_result_apply(
            partner_code=partner, execution_id=execution_id, status="SUCCESS"
        )
    assert refused.value.code == "execution_not_found"
    assert not ExecutionResult.objects.exists()
    assert not OutboxMessage.objects.filter(topic=RESULT_TOPIC).exists()
    assert selectors.executions_by_id([execution_id]) == {}
    assert [(r.execution_id, r.status) for r in selectors.mandate_executions(mandate=mandate)] == [
        (execution_id, selectors.NOT_PRESENTED)
    ]

    run = services.mandates_present_due(run_date=first.presentation_date)

    assert run.counts["presented"] == 1
    first.refresh_from_db()
    assert (first.status, first.attempts) == ("PRESENTED", 1)
    assert PresentationBatch.objects.get().count == 1
    assert handed == [([execution_id], False), ([execution_id], True)]  # the same id again
    (item,) = list(MandateExecutionItem.scan())
    assert item.execution_id == execution_id and item.created_at == written.created_at
    assert [(r.execution_id, r.status) for r in selectors.mandate_executions(mandate=mandate)] == [
        (execution_id, "PRESENTED")
    ]
    assert set(selectors.executions_by_id([execution_id])) == {execution_id}
    assert (
        services.execution_result_apply(
            partner_code=partner, execution_id=execution_id, status="SUCCESS"
        )
        == "applied"
    )
    assert MandateExecutionItem.get(execution_id, consistent_read=True).status == "SUCCESS"


def test_a_run_killed_at_its_second_chunk_presents_each_execution_once_on_resume(
    presentable, monkeypatch
):
    """Five due, chunks of 2: killed at the second chunk's hand-over (the first chunk
    committed; the second's executions written, and the third's, written while the
    second's transaction ran). The resumed run presents the second and third chunks only;
    each execution is handed over in one committed transaction, written to DynamoDB once,
    and counted once."""
    monkeypatch.setattr(presentation, "CHUNK", 2)
    monkeypatch.setattr(presentation, "TRANSACTION_ITEMS", 2)
    day = presentable["first"].presentation_date
    rows = list(
        ScheduledPresentation.objects.filter(mandate=presentable["mandate"]).order_by("id")[:5]
    )
    ids = [r.pk for r in rows]
    ScheduledPresentation.objects.filter(pk__in=ids).update(presentation_date=day)
    executions = [services.execution_id_for(r, 1) for r in rows]
    handed = _partner_dies_at_hand_over(monkeypatch, call=2)
    with pytest.raises(_Killed):
        services.mandates_present_due(run_date=day)
    _as_if_killed()
    statuses = dict(ScheduledPresentation.objects.filter(pk__in=ids).values_list("pk", "status"))
    assert [statuses[pk] for pk in ids] == ["PRESENTED"] * 2 + ["SCHEDULED"] * 3
    assert {i.execution_id for i in MandateExecutionItem.scan()} == set(executions)

    with count_dynamodb_calls() as calls:
        run = services.mandates_present_due(run_date=day)

    assert run.counts["presented"] == 5
    assert handed == [
        (executions[0:2], True),
        (executions[2:4], False),
        (executions[2:4], True),
        (executions[4:5], True),
    ]
    committed = [eid for ids_, ok in handed if ok for eid in ids_]
    assert sorted(committed) == sorted(executions)  # each once
    assert set(
        ScheduledPresentation.objects.filter(pk__in=ids).values_list("status", "attempts")
    ) == {("PRESENTED", 1)}
    batch = PresentationBatch.objects.get()
    assert batch.count == 5 and batch.total == sum(r.amount for r in rows)
    assert sorted(i.execution_id for i in MandateExecutionItem.scan()) == sorted(executions)
    # the second and third chunks' transactions found theirs written: nothing sent again
    assert calls.count("TransactWriteItems") == 2


def test_a_resumed_run_counts_the_notices_of_the_killed_one(presentable):
    day_before = presentable["first"].presentation_date - timedelta(days=1)
    killed = job_claim(name=services.PRESENTATION_JOB, key=day_before, lease=services.RUN_LEASE)
    presentation._pre_debit_notices(day_before, killed)  # then the worker died
    JobRun.objects.update(lease_until=timezone.now() - timedelta(seconds=1))  # its lease ran out
    run = services.mandates_present_due(run_date=day_before)
    assert run.counts["notices"] == 1
    notices = [n for n in NotificationItem.scan() if n.template_code == "pre_debit_notice"]
    assert len(notices) == 1  # not sent again


def test_a_held_run_tells_how_long_its_lease_has_left(presentable):
    day = presentable["first"].presentation_date
    assert services.presentation_run_held_for(run_date=day) is None  # no run yet
    job_claim(name=services.PRESENTATION_JOB, key=day, lease=timedelta(seconds=120))
    assert 110 < services.presentation_run_held_for(run_date=day) <= 120
    JobRun.objects.update(lease_until=timezone.now() - timedelta(seconds=1))
    assert services.presentation_run_held_for(run_date=day) is None  # lapsed: claimable
    JobRun.objects.update(
        lease_until=timezone.now() + timedelta(seconds=120),
        state="DONE",
        finished_at=timezone.now(),
    )
    assert services.presentation_run_held_for(run_date=day) is None  # done for the date


@pytest.mark.django_db(transaction=True)
def test_a_task_that_finds_the_run_held_resumes_it_when_the_lease_lapses(presentable):
    """A worker died mid-run and its task came back before the lease ran out: the task
    waits for the lease instead of leaving the date's presentations to the next day."""
    from celery.contrib.testing.worker import start_worker

    from config.celery import app
    from mandates.tasks import mandates_daily_task

    day = presentable["first"].presentation_date
    job_claim(
        name=services.PRESENTATION_JOB, key=day, lease=timedelta(seconds=2), owner="dead"
    )  # the dead run's lease
    runs = JobRun.objects.filter(name=services.PRESENTATION_JOB, key=day.isoformat())
    with start_worker(app, perform_ping_check=False, pool="solo", shutdown_timeout=10):
        mandates_daily_task.delay(day.isoformat())
        deadline = time.monotonic() + 30
        while not runs.filter(finished_at__isnull=False):
            assert time.monotonic() < deadline, "the run was not resumed"
            time.sleep(0.2)
    assert runs.get().counts["presented"] == 1
    presentable["first"].refresh_from_db()
    assert presentable["first"].status == "PRESENTED"
    assert MandateExecutionItem.count() == 1


def test_success_becomes_a_nach_payment_posted_once(presentable):
    _present(presentable)
    execution_id = _execution(presentable)
    partner = presentable["mandate"].banking_partner.code
    assert (
        services.execution_result_apply(
            partner_code=partner, execution_id=execution_id, status="SUCCESS"
        )
        == "applied"
    )
    assert (
        services.execution_result_apply(
            partner_code=partner, execution_id=execution_id, status="SUCCESS"
        )
        == "duplicate"
    )
    (txn,) = list(TransactionItem.scan())
    assert txn.mode == "NACH" and txn.amount_paise == int(presentable["first"].amount * 100)
    assert MandateExecutionItem.get(execution_id).txn_id == txn.txn_id
    payments_post_due()
    assert Posting.objects.get(txn_id=txn.txn_id).amount == presentable["first"].amount
    presentable["first"].refresh_from_db()
    assert presentable["first"].status == "SUCCEEDED"
    with pytest.raises(Conflict):
        services.execution_result_apply(
            partner_code=partner, execution_id=execution_id, status="BOUNCED", return_code="04"
        )


def test_a_success_synced_again_after_its_key_expired_is_not_a_second_payment(presentable):
    """The NACH payment's receipt number is ``NACH-<execution id>``: unique per branch like
    any receipt. A result synced again once its idempotency key has expired meets its own
    receipt (409 duplicate_receipt) and takes that transaction instead of failing."""
    from payments.ddb_models import DedupItem

    _present(presentable)
    execution_id = _execution(presentable)
    partner = presentable["mandate"].banking_partner.code
    services.execution_result_apply(
        partner_code=partner, execution_id=execution_id, status="SUCCESS"
    )
    (txn,) = list(TransactionItem.scan())
    assert txn.receipt_number == f"NACH-{execution_id}"
    for key in DedupItem.scan():  # expired and deleted by DynamoDB
        key.delete()
    result_message = OutboxMessage.objects.filter(topic=RESULT_TOPIC, key=execution_id)
    result_message.update(done_at=None)  # its sync is delivered again
    assert outbox_deliver(RESULT_TOPIC, execution_id)
    assert [t.txn_id for t in TransactionItem.scan()] == [txn.txn_id]
    execution = MandateExecutionItem.get(execution_id)
    assert execution.txn_id == txn.txn_id and execution.return_reason is None
    assert result_message.get().done_at is not None


def test_a_retryable_bounce_charges_the_loan_and_is_represented(presentable):
    _present(presentable)
    partner = presentable["mandate"].banking_partner.code
    services.execution_result_apply(
        partner_code=partner,
        execution_id=_execution(presentable),
        status="BOUNCED",
        return_code="04",
    )
    presentable["first"].refresh_from_db()
    assert presentable["first"].status == "RETRY_SCHEDULED"
    assert presentable["first"].presentation_date >= timezone.localdate() + timedelta(days=5)
    charge = LoanCharge.objects.get()
    assert (charge.amount, charge.gst, charge.total) == (
        Decimal("500.00"),
        Decimal("90.00"),
        Decimal("590.00"),
    )
    instalment = Instalment.objects.get(pk=presentable["first"].instalment_id)
    assert instalment.charges_due == Decimal("590.00")
    presentable["loan"].refresh_from_db()
    assert presentable["loan"].outstanding_charges == Decimal("590.00")
    assert MandateExecutionItem.get(_execution(presentable)).return_code == "04"
    assert any(n.template_code == "bounce_notice" for n in NotificationItem.scan())
    # re-presented later as attempt 2, and after the policy's limit it stops
    for attempt in (2, 3):
        services.mandates_present_due(run_date=presentable["first"].presentation_date)
        presentable["first"].refresh_from_db()
        assert presentable["first"].attempts == attempt
        services.execution_result_apply(
            partner_code=partner,
            execution_id=_execution(presentable),
            status="BOUNCED",
            return_code="04",
        )
        presentable["first"].refresh_from_db()
        JobRun.objects.all().delete()
    assert presentable["first"].status == "STOPPED"
    assert LoanCharge.objects.count() == 3


@pytest.mark.parametrize(("code", "status"), [("01", "CANCELLED"), ("03", "SUSPENDED")])
def test_a_terminal_bounce_stops_presentations_and_flags_the_mandate(presentable, code, status):
    _present(presentable)
    services.execution_result_apply(
        partner_code=presentable["mandate"].banking_partner.code,
        execution_id=_execution(presentable),
        status="BOUNCED",
        return_code=code,
    )
    assert Mandate.objects.get(pk=presentable["mandate"].pk).status == status
    assert not ScheduledPresentation.objects.filter(
        mandate=presentable["mandate"], status__in=["SCHEDULED", "RETRY_SCHEDULED"]
    ).exists()


def test_unknown_code_and_foreign_partner_are_refused(presentable):
    _present(presentable)
    with pytest.raises(ResultRejected):
        services.execution_result_apply(
            partner_code=presentable["mandate"].banking_partner.code,
            execution_id=_execution(presentable),
            status="BOUNCED",
            return_code="ZZ",
        )
    from core.errors import NotFound

    with pytest.raises(NotFound):
        services.execution_result_apply(
            partner_code="other-bank", execution_id=_execution(presentable), status="SUCCESS"
        )
    assert not ExecutionResult.objects.exists()


def test_the_sandbox_reports_success_or_the_configured_return(presentable):
    SandboxBounceRule.objects.create(
        account_number=presentable["mandate"].account_number, return_code="04"
    )
    _present(presentable)
    counts = sandbox.sandbox_report(
        partner_code=presentable["mandate"].banking_partner.code,
        execution_ids=[_execution(presentable)],
    )
    assert counts == {"applied": 1}
    assert ExecutionResult.objects.get().return_code == "04"


def test_a_bounce_charge_is_waived_only_through_maker_checker(presentable):
    _present(presentable)
    services.execution_result_apply(
        partner_code=presentable["mandate"].banking_partner.code,
        execution_id=_execution(presentable),
        status="BOUNCED",
        return_code="04",
    )
    charge = LoanCharge.objects.get()
    manager = presentable["people"]["manager"]
    request = loan_charge_waiver_request(charge_id=charge.pk, reason="bank error", actor=manager)
    area = UserFactory(
        role="Area Manager", level=User.Level.AREA, home_area=presentable["loan"].branch.area
    )
    approval_decide(request_id=request.pk, approve=True, actor=area)
    charge.refresh_from_db()
    assert charge.waived_amount == Decimal("590.00")
    presentable["loan"].refresh_from_db()
    assert presentable["loan"].outstanding_charges == Decimal("0.00")


@pytest.mark.django_db(transaction=True)
def test_the_daily_task_runs_through_an_embedded_worker(presentable, settings):
    import time

    from celery.contrib.testing.worker import start_worker

    from config.celery import app
    from mandates.tasks import sandbox_report_task

    _present(presentable)
    with start_worker(app, perform_ping_check=False, pool="solo", shutdown_timeout=10):
        sandbox_report_task.delay(
            presentable["mandate"].banking_partner.code, [_execution(presentable)]
        )
        deadline = time.monotonic() + 60
        while not ExecutionResult.objects.exists():
            assert time.monotonic() < deadline, "the sandbox report did not arrive"
            time.sleep(0.2)
    assert ExecutionResult.objects.get().status == "SUCCESS"
