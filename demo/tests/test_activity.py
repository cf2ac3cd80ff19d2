"""bootstrap's demo activity: every screen has something to show on a fresh start, made
through the services, once."""

from io import StringIO

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db.models import Count

from approvals.models import ApprovalRequest
from core.models import StatusChange
from desk.models import DeskReceipt
from loans.models import LoanAccount, LoanCharge
from mandates.models import ExecutionResult, Mandate, ScheduledPresentation
from payments.models import Posting
from reconciliation.models import Dcr, Deposit, StatementLine, StatementUpload

pytestmark = pytest.mark.django_db

BUCKETS = {"CURRENT", "SMA0", "SMA1", "SMA2", "NPA"}
STATES = {"DRAFT", "PENDING_APPROVAL", "APPROVED", "ACTIVE", "SUSPENDED", "CANCELLED"}


def _bootstrap() -> str:
    out = StringIO()
    call_command("bootstrap", verbosity=0, stdout=out)
    return out.getvalue()


def _counts() -> dict[str, object]:
    return {
        "mandates": sorted(Mandate.objects.values_list("id", "status")),
        "presentations": sorted(ScheduledPresentation.objects.values_list("id", "status")),
        "results": ExecutionResult.objects.count(),
        "charges": LoanCharge.objects.count(),
        "postings": Posting.objects.count(),
        "receipts": DeskReceipt.objects.count(),
        "dcrs": sorted(Dcr.objects.values_list("id", "status", "collected_amount")),
        "deposits": Deposit.objects.count(),
        "statements": StatementUpload.objects.count(),
        "approvals": ApprovalRequest.objects.count(),
        "loans": sorted(LoanAccount.objects.values_list("id", "outstanding_principal", "dpd")),
    }


@pytest.fixture
def demo_book():
    call_command(
        "demo_data", customers=500, loans=600, schedules=600, seed=7, verbosity=0, stdout=StringIO()
    )


def test_bootstrap_fills_every_screen_through_the_services_and_a_rerun_changes_nothing(
    demo_book,
):
    out = _bootstrap()
    assert "demo activity: mandates" in out

    # mandates in every state, moved by the workflow (history with actors)
    states = dict(Mandate.objects.values_list("status").annotate(n=Count("id")))
    assert set(states) == STATES
    mandate_type = ContentType.objects.get_for_model(Mandate)
    for mandate in Mandate.objects.exclude(status="DRAFT"):
        moves = StatusChange.objects.filter(content_type=mandate_type, object_id=mandate.pk)
        assert moves.filter(to_status="PENDING_APPROVAL", actor__isnull=False).exists()
    for status, action in (("SUSPENDED", "SUSPEND"), ("CANCELLED", "CANCEL")):
        stopped = Mandate.objects.filter(status=status).first()
        request = ApprovalRequest.objects.get(payload__mandate_id=stopped.pk)
        assert (request.status, request.payload["action"]) == ("APPROVED", action)
        assert request.maker_id != request.checker_id
    assert ApprovalRequest.objects.filter(status="PENDING").count() == 0
    assert Mandate.objects.filter(status="PENDING_APPROVAL").exists()  # the inbox has work

    # a NACH presentation: successes became NACH postings, bounces raised their charge
    success = ExecutionResult.objects.filter(status="SUCCESS").first()
    assert success is not None
    assert Posting.objects.filter(mode="NACH", loan=success.presentation.mandate.loan).exists()
    bounce = ExecutionResult.objects.filter(status="BOUNCED").first()
    assert bounce is not None and bounce.return_code in {"04", "05"}
    charge = LoanCharge.objects.get(reference=f"nach-bounce-{bounce.execution_id}")
    assert charge.loan_id == bounce.presentation.mandate.loan_id and charge.total > 0

    # loans in every bucket
    buckets = set(LoanAccount.objects.filter(status="ACTIVE").values_list("bucket", flat=True))
    assert buckets == BUCKETS

    # payments at the desk and in the field, posted; their DCRs, a deposit, a statement
    assert DeskReceipt.objects.exists()
    assert Posting.objects.filter(mode="CASH").exists()
    assert Dcr.objects.filter(status="SUBMITTED").exists()
    deposit = Deposit.objects.first()
    assert deposit is not None and deposit.amount > 0
    assert StatementUpload.objects.count() == 1
    assert StatementLine.objects.filter(matched_deposit=deposit).exists()
    assert StatementLine.objects.filter(matched_deposit__isnull=True).exists()

    before = _counts()
    again = _bootstrap()
    assert "demo activity" not in again
    assert _counts() == before
