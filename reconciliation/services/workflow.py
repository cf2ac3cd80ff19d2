"""The DCR and DBS workflows: submit, approve, return, with the one four-eyes rule."""

from __future__ import annotations

from django.db import transaction

from accounts.scoping import scope_queryset
from approvals.models import SubjectContribution
from approvals.services import subject_decide, subject_of
from core.workflow import require_permission, transition

from ..exceptions import AlreadyDecided, BusinessDateOpen, NotAllowed, ReportNotFound
from ..models import Dbs, Dcr, Status
from ..selectors import branch_day_figures
from ._common import _contributed, _dcr_apply, _dcr_lines_write, _is_closed
from .dbs import _dbs_compute, dbs_refresh

SUBMIT_DCR = "reconciliation.submit_dcr"


APPROVE_DCR = "reconciliation.approve_dcr"


SUBMIT_DBS = "reconciliation.submit_dbs"


APPROVE_DBS = "reconciliation.approve_dbs"


def _locked(model: type[Dcr] | type[Dbs], pk: int, actor) -> Dcr | Dbs:
    queryset = model.objects.select_for_update(of=("self",)).select_related("branch")
    obj = scope_queryset(queryset, actor).filter(pk=pk).first()
    if obj is None:
        raise ReportNotFound(f"No {model._meta.verbose_name} {pk} that you may see.")
    return obj


def _ensure_closed(obj: Dcr | Dbs) -> None:
    if not _is_closed(obj.branch, obj.business_date):
        raise BusinessDateOpen(
            f"The business date {obj.business_date:%d %b %Y} of {obj.branch.code} has not "
            f"closed yet (cut-off {obj.branch.cutoff_time:%H:%M}); submit it after the cut-off."
        )


def _remarks_required(remarks: str) -> str:
    remarks = (remarks or "").strip()
    if not remarks:
        raise NotAllowed("Say why you return it.", code="remarks_required", status=400)
    return remarks


def _reopen_if_returned(obj: Dcr | Dbs, actor) -> None:
    if obj.status == Status.RETURNED:
        transition(obj, Status.DRAFT, actor=actor, remarks="reopened to resubmit")


def _decision_check(obj: Dcr | Dbs, actor, target: str) -> None:
    """Decided already (one of two concurrent checkers): the loser learns who won.
    Then the one four-eyes rule: not the submitter, nor (a DBS) anyone who recorded,
    changed or deleted one of its deposits since its last decision."""
    if obj.status in (Status.APPROVED, Status.RETURNED):
        who = obj.decided_by.get_username() if obj.decided_by else "someone"
        raise AlreadyDecided(f"{obj} was already {obj.status.lower()} by {who}.")
    if obj.status != Status.SUBMITTED:
        transition(obj, target, actor=actor)  # raises InvalidTransition
    subject_decide(
        subject=subject_of(obj),
        actor=actor,
        makers=[obj.submitted_by_id],
        what=f"this {obj._meta.verbose_name}",
    )


@transaction.atomic
def dcr_submit(*, dcr_id: int, actor) -> Dcr:
    """The branch manager submits a closed date's DCR. Its figures are read again from
    DynamoDB under the lock, so the submitted figures are exactly what is there now."""
    require_permission(actor, SUBMIT_DCR, "You may not submit a DCR.")
    dcr = _locked(Dcr, dcr_id, actor)
    if dcr.status not in (Status.DRAFT, Status.RETURNED):
        transition(dcr, Status.SUBMITTED, actor=actor)  # raises
    _ensure_closed(dcr)
    figures = branch_day_figures(branch_id=dcr.branch_id, business_date=dcr.business_date)
    _reopen_if_returned(dcr, actor)
    totals = figures.totals()
    _dcr_apply(dcr, dcr.branch, figures, totals)
    _dcr_lines_write(dcr, totals)
    transition(dcr, Status.SUBMITTED, actor=actor)
    _contributed(dcr, actor, SubjectContribution.Kind.SUBMITTED)
    dbs_refresh(branch_id=dcr.branch_id, business_date=dcr.business_date)
    return dcr


@transaction.atomic
def dcr_approve(*, dcr_id: int, actor, remarks: str = "") -> Dcr:
    require_permission(actor, APPROVE_DCR, "You may not approve DCRs.")
    dcr = _locked(Dcr, dcr_id, actor)
    _decision_check(dcr, actor, Status.APPROVED)
    transition(dcr, Status.APPROVED, actor=actor, remarks=(remarks or "").strip())
    dbs_refresh(branch_id=dcr.branch_id, business_date=dcr.business_date)  # its DCR flag
    return dcr


@transaction.atomic
def dcr_return(*, dcr_id: int, actor, remarks: str) -> Dcr:
    require_permission(actor, APPROVE_DCR, "You may not return DCRs.")
    remarks = _remarks_required(remarks)
    dcr = _locked(Dcr, dcr_id, actor)
    _decision_check(dcr, actor, Status.RETURNED)
    transition(dcr, Status.RETURNED, actor=actor, remarks=remarks)
    return dcr


@transaction.atomic
def dbs_submit(*, dbs_id: int, actor) -> Dbs:
    require_permission(actor, SUBMIT_DBS, "You may not submit a DBS.")
    dbs = _locked(Dbs, dbs_id, actor)
    if dbs.status not in (Status.DRAFT, Status.RETURNED):
        transition(dbs, Status.SUBMITTED, actor=actor)  # raises
    _ensure_closed(dbs)
    _reopen_if_returned(dbs, actor)
    _dbs_compute(dbs)
    transition(dbs, Status.SUBMITTED, actor=actor)
    _contributed(dbs, actor, SubjectContribution.Kind.SUBMITTED)
    return dbs


@transaction.atomic
def dbs_approve(*, dbs_id: int, actor, remarks: str = "") -> Dbs:
    require_permission(actor, APPROVE_DBS, "You may not approve a DBS.")
    dbs = _locked(Dbs, dbs_id, actor)
    _decision_check(dbs, actor, Status.APPROVED)
    transition(dbs, Status.APPROVED, actor=actor, remarks=(remarks or "").strip())
    return dbs


@transaction.atomic
def dbs_return(*, dbs_id: int, actor, remarks: str) -> Dbs:
    require_permission(actor, APPROVE_DBS, "You may not return a DBS.")
    remarks = _remarks_required(remarks)
    dbs = _locked(Dbs, dbs_id, actor)
    _decision_check(dbs, actor, Status.RETURNED)
    transition(dbs, Status.RETURNED, actor=actor, remarks=remarks)
    return dbs
