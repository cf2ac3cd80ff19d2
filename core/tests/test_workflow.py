"""core.workflow: one transition function, one permission check, one status history (and
the data migration that brought the three old history tables into it)."""

import datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from audit.models import AuditMessage
from core.models import StatusChange
from core.workflow import InvalidTransition, NotAllowed, require_permission, transition
from reconciliation.models import Dbs, Dcr
from tests.factories import UserFactory, branch_with_loan, days_ago, draft_mandate


def _dcr():
    branch, loan = branch_with_loan()
    return Dcr.objects.create(branch=branch, business_date=days_ago(1)), loan


@pytest.mark.django_db
def test_an_allowed_move_sets_the_declared_fields_and_writes_history_and_audit():
    dcr, _ = _dcr()
    actor = UserFactory(role="Branch Manager", home_branch=dcr.branch)

    transition(dcr, Dcr.Status.SUBMITTED, actor=actor, remarks="figures checked")

    dcr.refresh_from_db()
    assert dcr.status == "SUBMITTED"
    assert dcr.submitted_by == actor and dcr.submitted_at is not None
    assert dcr.decided_by is None and dcr.decided_at is None
    moves = list(dcr.history.values_list("from_status", "to_status", "actor", "remarks"))
    assert moves == [("DRAFT", "SUBMITTED", actor.pk, "figures checked")]
    event = AuditMessage.objects.get(
        ref=f"reconciliation.dcr#{dcr.pk}", payload__action="transition"
    )
    assert event.changes == {"status": ["DRAFT", "SUBMITTED"]}
    assert event.remarks == "figures checked"


@pytest.mark.django_db
def test_a_decision_records_the_checker_and_the_remarks():
    dcr, _ = _dcr()
    Dcr.objects.filter(pk=dcr.pk).update(status=Dcr.Status.SUBMITTED)
    dcr.refresh_from_db()
    checker = UserFactory(role="Branch Manager", home_branch=dcr.branch)

    transition(dcr, Dcr.Status.RETURNED, actor=checker, remarks="cash short")

    dcr.refresh_from_db()
    assert (dcr.status, dcr.decided_by, dcr.remarks) == ("RETURNED", checker, "cash short")
    assert dcr.decided_at is not None


@pytest.mark.django_db
def test_a_refused_move_changes_nothing_and_says_why():
    dcr, _ = _dcr()

    with pytest.raises(InvalidTransition) as refused:
        transition(
            dcr,
            Dcr.Status.APPROVED,
            actor=UserFactory(role="Branch Manager", home_branch=dcr.branch),
        )

    assert (refused.value.code, refused.value.status) == ("invalid_transition", 409)
    assert str(refused.value) == f"{dcr} is draft: it cannot be approved."
    dcr.refresh_from_db()
    assert dcr.status == "DRAFT" and dcr.decided_by is None
    assert not dcr.history.exists()
    assert not AuditMessage.objects.filter(ref=f"reconciliation.dcr#{dcr.pk}").exists()


@pytest.mark.django_db
def test_a_model_words_its_own_refusal():
    branch, loan = branch_with_loan()
    mandate = draft_mandate(loan, UserFactory(role="Branch Staff", home_branch=branch))

    with pytest.raises(InvalidTransition) as refused:
        transition(mandate, "ACTIVE", actor=None)

    assert str(refused.value) == "A draft mandate cannot become active."


@pytest.mark.django_db
def test_require_permission_refuses_with_not_allowed():
    branch, _ = branch_with_loan()

    with pytest.raises(NotAllowed) as refused:
        require_permission(
            UserFactory(role="Branch Staff", home_branch=branch),
            "reconciliation.approve_dcr",
            "You may not approve DCRs.",
        )

    assert (refused.value.code, refused.value.status) == ("not_allowed", 403)
    assert str(refused.value) == "You may not approve DCRs."
    require_permission(
        UserFactory(role="Branch Manager", home_branch=branch),
        "reconciliation.submit_dcr",
        "unused",
    )  # allowed


BEFORE = [("mandates", "0003_plural_names"), ("reconciliation", "0002_statement_content_hash")]


@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_the_three_old_histories_into_status_change():
    branch, loan = branch_with_loan()
    mandate = draft_mandate(
        loan, UserFactory(role="Branch Staff", home_branch=branch)
    )  # its "created" row goes back and forth too
    dcr = Dcr.objects.create(branch=branch, business_date=days_ago(1))
    dbs = Dbs.objects.create(branch=branch, business_date=days_ago(1))
    actor = UserFactory(role="Branch Manager", home_branch=branch)
    then = timezone.now() - datetime.timedelta(days=400)

    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        old = MigrationExecutor(connection).loader.project_state(BEFORE).apps
        rows = [
            ("mandates", "MandateTransition", "mandate_id", mandate.pk),
            ("reconciliation", "DcrHistory", "dcr_id", dcr.pk),
            ("reconciliation", "DbsHistory", "dbs_id", dbs.pk),
        ]
        for app, name, fk, pk in rows:
            model = old.get_model(app, name)
            for minutes, (before, after) in enumerate(
                [("DRAFT", "SUBMITTED"), ("SUBMITTED", "RETURNED")]
            ):
                row = model.objects.create(
                    **{fk: pk}, from_status=before, to_status=after, actor_id=actor.pk, remarks=name
                )
                # auto_now_add stamped it now: give it an old time to see it kept
                model.objects.filter(pk=row.pk).update(
                    at=then + datetime.timedelta(minutes=minutes)
                )
        assert old.get_model("mandates", "MandateTransition").objects.count() == 3  # + "created"
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

    history = list(
        mandate.transitions.values_list("from_status", "to_status", "actor_id", "remarks", "at")
    )
    assert [row[:4] for row in history] == [
        ("DRAFT", "SUBMITTED", actor.pk, "MandateTransition"),
        ("SUBMITTED", "RETURNED", actor.pk, "MandateTransition"),
        ("", "DRAFT", history[2][2], "created"),
    ]
    assert [row[4] for row in history[:2]] == [then, then + datetime.timedelta(minutes=1)]
    for obj, remarks in ((dcr, "DcrHistory"), (dbs, "DbsHistory")):
        moves = list(obj.history.values_list("from_status", "to_status", "remarks", "at"))
        assert moves == [
            ("DRAFT", "SUBMITTED", remarks, then),
            ("SUBMITTED", "RETURNED", remarks, then + datetime.timedelta(minutes=1)),
        ]
    assert StatusChange.objects.count() == 7
    tables = connection.introspection.table_names()
    assert not {"mandates_mandatetransition", "reconciliation_dcrhistory"} & set(tables)
    assert "reconciliation_dbshistory" not in tables
