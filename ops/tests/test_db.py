"""The reporting router on real connections: the test settings define ``replica`` as a test
mirror of ``default`` (the same test database through a second connection), and these
tests switch reports to it with ``REPORTING_DATABASE``.

A mirror is a faithful stand-in for a lagging replica in a test that runs inside a
transaction: the second connection cannot see the test's uncommitted rows, as a replica
has not yet replayed the primary's newest commits."""

import json
import socket
import subprocess
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connections, router
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Branch
from ops.db import REPLICA, ReportingRouter, replica_lag_seconds, reporting, reporting_alias
from payments.services import payment_ingest, payments_post_due
from reconciliation import selectors, services
from reconciliation.models import Dbs, Dcr
from tests.factories import UserFactory, branch_with_loan, days_ago, pay, payment
from tests.processes import environment, project_run

BOTH = ["default", REPLICA]


@pytest.fixture
def to_replica(settings):
    settings.REPORTING_DATABASE = REPLICA


def _submitted_dcr():
    branch, loan = branch_with_loan()
    pay(loan, "120.00")
    dcr = services.dcr_build(branch_id=branch.pk, business_date=days_ago(1))
    services.dcr_submit(dcr_id=dcr.pk, actor=UserFactory(role="Branch Manager", home_branch=branch))
    return dcr, UserFactory(role="Area Manager", home_area=branch.area)


def _queries(alias: str) -> CaptureQueriesContext:
    return CaptureQueriesContext(connections[alias])


@pytest.mark.django_db(transaction=True, databases=BOTH)
def test_reports_read_the_replica_and_a_decision_reads_the_primary(to_replica):
    dcr, approver = _submitted_dcr()

    with _queries("default") as primary, _queries(REPLICA) as replica:
        data = selectors.dashboard_data(user=approver, today=timezone.localdate())
    assert data["pending"]["dcr"] == 1 and data["pending"]["dcr_mine"] == 1
    assert len(replica) > 0
    assert len(primary) == 0, [q["sql"] for q in primary]

    for rows_of, visible in (
        (selectors.dcr_export_rows, selectors.dcrs_visible),
        (selectors.dbs_export_rows, selectors.dbss_visible),
    ):
        with _queries("default") as primary, _queries(REPLICA) as replica:
            rows = list(rows_of(visible(user=approver)))
        assert [row[0] for row in rows[1:]] == [dcr.branch.code]
        assert len(replica) == 1 and len(primary) == 0

    with _queries("default") as primary, _queries(REPLICA) as replica:
        services.dcr_approve(dcr_id=dcr.pk, actor=approver, remarks="ok")
    assert len(replica) == 0
    assert any("FOR UPDATE" in q["sql"] for q in primary)
    assert Dcr.objects.get(pk=dcr.pk).status == "APPROVED"


@pytest.mark.django_db(databases=BOTH)
def test_a_lagging_replica_shows_old_figures_while_the_approval_reads_the_primary(to_replica):
    # Rows of this test's open transaction: committed for the primary's own connection,
    # not yet visible through the replica's (as if replication were behind).
    dcr, approver = _submitted_dcr()
    everyone = UserFactory(
        is_superuser=True
    )  # a superuser: no database read to decide what they see

    assert Dcr.objects.filter(status="SUBMITTED").count() == 1
    behind = selectors.dashboard_data(user=everyone, today=timezone.localdate())
    assert behind["pending"]["dcr"] == 0
    export = list(selectors.dcr_export_rows(selectors.dcrs_visible(user=everyone)))
    assert len(export) == 1  # the header only

    services.dcr_approve(dcr_id=dcr.pk, actor=approver, remarks="ok")
    assert Dcr.objects.get(pk=dcr.pk).status == "APPROVED"


@pytest.mark.django_db(databases=BOTH)
def test_without_a_replica_reports_read_the_primary():
    dcr, approver = _submitted_dcr()
    assert reporting_alias() == "default"
    with _queries("default") as primary, _queries(REPLICA) as replica:
        data = selectors.dashboard_data(user=approver, today=timezone.localdate())
        rows = list(selectors.dbs_export_rows(selectors.dbss_visible(user=approver)))
    assert data["pending"]["dcr"] == 1 and len(rows) == 2
    assert len(primary) > 0 and len(replica) == 0


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.django_db(transaction=True, databases=BOTH)  # closes the replica's connection
def test_an_unreachable_replica_makes_reports_read_the_primary(to_replica, monkeypatch, caplog):
    dcr, approver = _submitted_dcr()
    replica = connections[REPLICA]
    replica.close()
    monkeypatch.setitem(replica.settings_dict, "PORT", str(_closed_port()))
    try:
        with caplog.at_level("WARNING", logger="ops.db"):
            data = selectors.dashboard_data(user=approver, today=timezone.localdate())
    finally:
        replica.close()
    assert data["pending"]["dcr"] == 1
    assert any("reading the primary" in r.getMessage() for r in caplog.records)


@pytest.mark.django_db(databases=BOTH)
def test_writes_locks_and_migrations_stay_on_the_primary(to_replica):
    with reporting() as alias:
        assert alias == REPLICA
        assert Dcr.objects.all().db == REPLICA
        assert Dcr.objects.select_for_update().db == "default"
        assert router.db_for_write(Dcr) == "default"
    assert Dcr.objects.all().db == "default"
    assert reporting_alias() == REPLICA

    routing = ReportingRouter()
    assert routing.allow_migrate("default", "reconciliation") is True
    assert routing.allow_migrate(REPLICA, "reconciliation") is False
    from_replica, from_primary = Branch(), Dbs()
    from_replica._state.db, from_primary._state.db = REPLICA, "default"
    assert router.allow_relation(from_replica, from_primary) is True
    assert replica_lag_seconds() is None  # the mirror is no standby: nothing to replay


@pytest.mark.django_db(databases=BOTH)
def test_the_integrity_check_reads_the_replica_unless_told_primary(to_replica, capsys):
    branch, loan = branch_with_loan()
    payment_ingest(
        payment=payment(loan, amount="700.00"),
        idempotency_key="replica-1",
        principal=UserFactory(is_superuser=True),
        source="t",
    )
    assert payments_post_due() == {"posted": 1}  # the posting: not visible to the replica yet
    today = timezone.localdate()
    tomorrow = today + timedelta(days=1)  # a payment after the cut-off counts for tomorrow
    window = ["--from", (today - timedelta(days=7)).isoformat(), "--to", tomorrow.isoformat()]
    window += ["--branch", branch.code]  # looked up on the primary

    with pytest.raises(SystemExit) as exited:
        call_command("payments_integrity", *window)
    assert exited.value.code == 1
    captured = capsys.readouterr()
    assert "POSTED ₹700.00 has no posting" in captured.out
    assert "read from the read replica" in captured.err and "--primary" in captured.err

    call_command("payments_integrity", *window, "--primary")
    assert capsys.readouterr().out.strip().endswith("1 transactions, 1 postings: agree")


def _settings_of(**env: str) -> subprocess.CompletedProcess:
    script = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({'databases': s.DATABASES, 'reporting': s.REPORTING_DATABASE}, "
        "default=str))"
    )
    return project_run("-c", script, env=environment(**env), timeout=60)


def test_database_replica_url_adds_the_replica_alias_with_the_primarys_pool():
    result = _settings_of(
        DATABASE_URL="postgres://app:secret@primary.internal:5432/backoffice",
        DATABASE_REPLICA_URL="postgres://reader:other@replica.internal:5433/backoffice",
        DATABASE_POOL_MAX="7",
    )
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    replica = config["databases"]["replica"]
    assert config["reporting"] == "replica"
    assert (replica["HOST"], replica["PORT"], replica["USER"]) == (
        "replica.internal",
        5433,
        "reader",
    )
    assert replica["OPTIONS"]["pool"]["max_size"] == 7
    assert config["databases"]["default"]["HOST"] == "primary.internal"

    result = _settings_of(DATABASE_REPLICA_URL="")
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert list(config["databases"]) == ["default"] and config["reporting"] == "default"


def test_a_malformed_replica_url_is_one_line_naming_the_variable():
    result = project_run(
        "manage.py", "check", env=environment(DATABASE_REPLICA_URL="mysql//x"), timeout=60
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: DATABASE_REPLICA_URL is malformed")
