"""The mandates admin: scoped lists, adding through the service, actions with messages,
the suspend/cancel request, executions from DynamoDB, bank holidays, the partner's
response file, and the charge waiver request on the loan charges list."""

import re

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from approvals.models import ApprovalRequest
from core.models import JobRun
from loans.models import LoanCharge
from mandates import services
from mandates.exceptions import ResponseFileRejected, ResultRejected
from mandates.models import (
    BankHoliday,
    ExecutionResult,
    Mandate,
    PresentationBatch,
    ScheduledPresentation,
)
from tests.factories import (
    BankingPartnerFactory,
    UserFactory,
    active_mandate,
    actors,
    draft_mandate,
)

pytestmark = pytest.mark.django_db

MANDATES = "/admin/mandates/mandate/"
HOLIDAYS = "/admin/mandates/bankholiday/"
RESULTS = "/admin/mandates/executionresult/"
UPLOAD = "/admin/mandates/executionresult/upload/"
CHARGES = "/admin/loans/loancharge/"


@pytest.fixture
def mandate_world(world):
    """The shared world seen from ``own`` and from ``other`` (far), with their people."""
    own, other = world.branches["own"], world.branches["far"]
    return {
        "own": own,
        "other": other,
        "area": own.area,
        "loan": world.loans["own"],
        "other_loan": world.loans["far"],
        "people": world.people,
        "other_people": actors(other),
    }


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def presented(mandate):
    """Present the mandate's first instalment; returns (presentation, execution id)."""
    first = ScheduledPresentation.objects.filter(mandate=mandate).order_by("due_date").first()
    services.mandates_present_due(run_date=first.presentation_date)
    first.refresh_from_db()
    return first, services.execution_id_for(first, first.attempts)


# --- The mandate list ---------------------------------------------------------------------


def test_the_list_shows_the_users_branch_only_with_masked_account_numbers(mandate_world):
    own = draft_mandate(
        mandate_world["loan"], mandate_world["people"]["staff"], account_number="123456789012"
    )
    foreign = draft_mandate(mandate_world["other_loan"], mandate_world["other_people"]["staff"])
    client = logged_in(mandate_world["people"]["staff"])
    response = client.get(MANDATES)
    assert response.status_code == 200
    assert [m.pk for m in response.context["cl"].result_list] == [own.pk]
    html = response.content.decode()
    # the list shows an account by its last four digits (1366 px), never the whole number
    assert "…9012" in html and "123456789012" not in html and "56789012" not in html
    assert mandate_world["other"].name not in html  # neither a row nor a branch filter choice
    assert client.get(f"{MANDATES}{own.pk}/change/").status_code == 200
    assert client.get(f"{MANDATES}{foreign.pk}/change/").status_code == 302


def test_the_list_costs_the_same_queries_for_one_or_many_mandates(mandate_world):
    staff = mandate_world["people"]["staff"]
    draft_mandate(mandate_world["loan"], staff)
    client = logged_in(staff)
    client.get(MANDATES)  # warm caches (content types, sessions)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(MANDATES).status_code == 200
        return len(queries)

    one = count()
    for n in range(4):
        draft_mandate(mandate_world["loan"], staff, account_number=f"55544433322{n}")
    assert count() == one


def test_search_is_exact_by_loan_number_umrn_or_id(mandate_world):
    mandate = active_mandate(mandate_world["loan"], mandate_world["people"])
    other = draft_mandate(mandate_world["other_loan"], mandate_world["other_people"]["staff"])
    client = logged_in(mandate_world["people"]["ops"])
    by_loan = client.get(MANDATES, {"q": mandate_world["loan"].loan_number.lower()})
    assert [m.pk for m in by_loan.context["cl"].result_list] == [mandate.pk]
    by_umrn = client.get(MANDATES, {"q": mandate.umrn})
    assert [m.pk for m in by_umrn.context["cl"].result_list] == [mandate.pk]
    by_id = client.get(MANDATES, {"q": str(other.pk)})
    assert [m.pk for m in by_id.context["cl"].result_list] == [other.pk]
    assert list(client.get(MANDATES, {"q": mandate.umrn[:8]}).context["cl"].result_list) == []


def test_filters_by_status_and_branch(mandate_world):
    active = active_mandate(mandate_world["loan"], mandate_world["people"])
    draft = draft_mandate(mandate_world["other_loan"], mandate_world["other_people"]["staff"])
    client = logged_in(mandate_world["people"]["ops"])
    by_status = client.get(MANDATES, {"status__exact": "ACTIVE"})
    assert [m.pk for m in by_status.context["cl"].result_list] == [active.pk]
    by_branch = client.get(MANDATES, {"loan__branch__id__exact": mandate_world["other"].pk})
    assert [m.pk for m in by_branch.context["cl"].result_list] == [draft.pk]


# --- Adding and changing ------------------------------------------------------------------


def _form(loan, **overrides):
    data = {
        "loan": loan.pk,
        "payer": loan.customer_id,
        "bank_name": "HDFC Bank",
        "account_number": "50100012345678",
        "ifsc": "HDFC0001234",
        "account_type": "SAVINGS",
        "max_amount": "20000.00",
        "frequency": "MONTHLY",
        "start_date": "2026-12-01",
        "end_date": "2029-12-31",
        "banking_partner": BankingPartnerFactory().pk,
        "mandate_type": "E_NACH",
    }
    data.update(overrides)
    return data


def test_adding_a_mandate_goes_through_the_service(mandate_world):
    staff = mandate_world["people"]["staff"]
    response = logged_in(staff).post(f"{MANDATES}add/", _form(mandate_world["loan"]))
    assert response.status_code == 302, response.context["adminform"].form.errors
    mandate = Mandate.objects.get()
    assert (mandate.status, mandate.created_by, mandate.loan) == (
        "DRAFT",
        staff,
        mandate_world["loan"],
    )
    move = mandate.transitions.get()
    assert (move.to_status, move.actor, move.remarks) == ("DRAFT", staff, "created")


def test_the_payer_must_be_on_the_loan_and_the_loan_in_scope(mandate_world):
    from tests.factories import make_customer

    client = logged_in(mandate_world["people"]["staff"])
    stranger = make_customer(branch=mandate_world["own"])
    refused = client.post(f"{MANDATES}add/", _form(mandate_world["loan"], payer=stranger.pk))
    assert refused.status_code == 200
    assert "payer" in refused.context["adminform"].form.errors
    foreign = client.post(f"{MANDATES}add/", _form(mandate_world["other_loan"]))
    assert "loan" in foreign.context["adminform"].form.errors
    assert not Mandate.objects.exists()


def _management(client, url) -> dict:
    """The inline formsets' management fields of a change page, as it would post them."""
    html = client.get(url).content.decode()
    pattern = r'name="([a-z]+-(?:TOTAL|INITIAL|MIN_NUM|MAX_NUM)_FORMS)"[^>]*value="(\d*)"'
    return dict(re.findall(pattern, html))


def test_a_draft_can_be_changed_but_not_once_submitted(mandate_world):
    staff = mandate_world["people"]["staff"]
    mandate = draft_mandate(mandate_world["loan"], staff)
    client = logged_in(staff)
    url = f"{MANDATES}{mandate.pk}/change/"
    changed = client.post(
        url,
        {
            **_form(
                mandate_world["loan"],
                banking_partner=mandate.banking_partner_id,
                ifsc="SBIN0009999",
            ),
            **_management(client, url),
        },
    )
    assert changed.status_code == 302
    mandate.refresh_from_db()
    assert mandate.ifsc == "SBIN0009999" and mandate.status == "DRAFT"

    services.mandate_submit(mandate_id=mandate.pk, actor=staff)
    page = client.get(f"{MANDATES}{mandate.pk}/change/").content.decode()
    assert 'name="_save"' not in page and 'name="ifsc"' not in page
    assert "XXXXXXXXXX5678" in page and "50100012345678" not in page
    refused = client.post(
        url, {**_form(mandate_world["loan"], ifsc="SBIN0001111"), **_management(client, url)}
    )
    assert refused.status_code == 200
    assert "Only a draft mandate can be changed" in refused.content.decode()
    mandate.refresh_from_db()
    assert mandate.ifsc == "SBIN0009999"
    assert client.post(f"{MANDATES}{mandate.pk}/delete/").status_code == 403


# --- Actions ------------------------------------------------------------------------------


def _action(client, action, *mandates):
    return client.post(
        MANDATES,
        {"action": action, "_selected_action": [m.pk for m in mandates]},
        follow=True,
    )


def test_submit_and_send_to_bank_actions_call_the_services_and_report_each_mandate(mandate_world):
    people = mandate_world["people"]
    mandate = draft_mandate(mandate_world["loan"], people["staff"])
    submitted = _action(logged_in(people["staff"]), "submit_for_approval", mandate)
    assert any("1 mandate(s) submitted for approval" in m for m in messages_of(submitted))
    mandate.refresh_from_db()
    assert (mandate.status, mandate.maker) == ("PENDING_APPROVAL", people["staff"])

    ops = logged_in(people["ops"])
    early = _action(ops, "send_to_bank", mandate)  # not approved yet
    assert any(
        f"{mandate}: A pending approval mandate cannot become submitted to bank" in m
        for m in messages_of(early)
    )
    services.mandate_approve(mandate_id=mandate.pk, actor=people["manager"])
    sent = _action(ops, "send_to_bank", mandate)
    assert any("1 mandate(s) sent to the bank" in m and "(active)" in m for m in messages_of(sent))
    mandate.refresh_from_db()
    assert mandate.status == "ACTIVE" and mandate.umrn


def test_actions_are_offered_only_with_their_permission(mandate_world):
    draft_mandate(mandate_world["loan"], mandate_world["people"]["staff"])
    staff_actions = logged_in(mandate_world["people"]["staff"]).get(MANDATES).context["action_form"]
    offered = {name for name, _ in staff_actions.fields["action"].choices}
    assert "submit_for_approval" in offered
    assert not {"send_to_bank", "resume"} & offered


def test_stop_request_from_the_change_page_and_resume_action(mandate_world):
    people = mandate_world["people"]
    mandate = active_mandate(mandate_world["loan"], people)
    manager = logged_in(people["manager"])
    page = manager.get(f"{MANDATES}{mandate.pk}/change/").content.decode()
    assert 'id="stop-request-form"' in page and "Ask to suspend" in page

    url = f"{MANDATES}{mandate.pk}/stop-request/"
    missing = manager.post(url, {"action": "SUSPEND", "reason": " "})
    assert missing.status_code == 200
    assert "reason" in missing.context["stop_form"].errors
    asked = manager.post(url, {"action": "SUSPEND", "reason": "customer dispute"}, follow=True)
    assert any("suspension was requested" in m for m in messages_of(asked))
    request = ApprovalRequest.objects.get(kind="MANDATE_SUSPENSION")
    assert request.status == "PENDING" and request.maker == people["manager"]
    again = manager.get(f"{MANDATES}{mandate.pk}/change/").content.decode()
    assert 'id="pending-stop"' in again and 'id="stop-request-form"' not in again
    assert manager.get(url).status_code == 405

    from approvals.services import approval_decide

    approval_decide(request_id=request.pk, approve=True, actor=people["ops"])
    resumed = _action(logged_in(people["ops"]), "resume", mandate)
    assert any("1 mandate(s) resumed" in m for m in messages_of(resumed))
    mandate.refresh_from_db()
    assert mandate.status == "ACTIVE"


def test_branch_staff_cannot_ask_to_stop(mandate_world):
    mandate = active_mandate(mandate_world["loan"], mandate_world["people"])
    staff = logged_in(mandate_world["people"]["staff"])
    page = staff.get(f"{MANDATES}{mandate.pk}/change/").content.decode()
    assert 'id="stop-request-form"' not in page
    refused = staff.post(
        f"{MANDATES}{mandate.pk}/stop-request/", {"action": "CANCEL", "reason": "x"}
    )
    assert refused.status_code == 403


def test_the_change_page_shows_history_presentations_and_executions(mandate_world):
    mandate = active_mandate(mandate_world["loan"], mandate_world["people"])
    first, execution_id = presented(mandate)
    response = logged_in(mandate_world["people"]["staff"]).get(f"{MANDATES}{mandate.pk}/change/")
    html = response.content.decode()
    assert [row.execution_id for row in response.context["executions"]] == [execution_id]
    assert execution_id in html and "PRESENTED" in html
    assert "SUBMITTED_TO_BANK" in html  # a move of the history inline
    assert str(first.amount) in html


# --- Bank holidays ------------------------------------------------------------------------


def test_saving_or_deleting_a_holiday_reschedules_presentations(mandate_world):
    mandate = active_mandate(mandate_world["loan"], mandate_world["people"])
    first = ScheduledPresentation.objects.filter(mandate=mandate).order_by("due_date").first()
    day = first.presentation_date
    ops = logged_in(mandate_world["people"]["ops"])
    added = ops.post(
        f"{HOLIDAYS}add/", {"date": day.isoformat(), "name": "Bank holiday"}, follow=True
    )
    assert any("1 moved" in m for m in messages_of(added))
    first.refresh_from_db()
    assert first.presentation_date > day

    holiday = BankHoliday.objects.get()
    deleted = ops.post(f"{HOLIDAYS}{holiday.pk}/delete/", {"post": "yes"}, follow=True)
    assert any("1 moved" in m for m in messages_of(deleted))
    first.refresh_from_db()
    assert first.presentation_date == day
    assert logged_in(mandate_world["people"]["staff"]).get(f"{HOLIDAYS}add/").status_code == 403


def test_a_holiday_is_saved_and_removed_through_the_services_and_audited(mandate_world):
    from audit.models import AuditMessage

    mandate = active_mandate(mandate_world["loan"], mandate_world["people"])
    first = ScheduledPresentation.objects.filter(mandate=mandate).order_by("due_date").first()
    day = first.presentation_date
    holiday, moved = services.bank_holiday_save(
        holiday_id=None, actor=mandate_world["people"]["ops"], date=day, name="Bank holiday"
    )
    assert moved == 1
    entity = f"mandates.bankholiday#{holiday.pk}"
    assert AuditMessage.objects.filter(ref=entity, payload__action="create").exists()

    ops = logged_in(mandate_world["people"]["ops"])
    twice = ops.post(f"{HOLIDAYS}add/", {"date": day.isoformat(), "name": "Again"})
    assert twice.status_code == 200
    assert "date" in twice.context["adminform"].form.errors
    assert BankHoliday.objects.count() == 1
    with pytest.raises(ValidationError):
        services.bank_holiday_save(holiday_id=None, actor=None, date=day, name="Again")
    assert BankHoliday.objects.count() == 1

    assert services.bank_holidays_delete(holiday_ids=[holiday.pk], actor=None) == 1
    assert not BankHoliday.objects.exists()
    assert AuditMessage.objects.filter(ref=entity, payload__action="delete").exists()
    first.refresh_from_db()
    assert first.presentation_date == day


def test_read_only_screens_open_and_refuse_changes(mandate_world):
    mandate = active_mandate(mandate_world["loan"], mandate_world["people"])
    presented(mandate)
    ops = logged_in(mandate_world["people"]["ops"])
    for model in (
        "mandates/scheduledpresentation",
        "mandates/presentationbatch",
        "core/jobrun",
        "mandates/executionresult",
        "mandates/returncodepolicy",
        "mandates/sandboxbouncerule",
    ):
        assert ops.get(f"/admin/{model}/").status_code == 200, model
    for model in ("scheduledpresentation", "presentationbatch", "executionresult"):
        assert ops.get(f"/admin/mandates/{model}/add/").status_code == 403, model
    foreign = active_mandate(mandate_world["other_loan"], mandate_world["other_people"])
    staff = logged_in(mandate_world["people"]["staff"])
    rows = staff.get("/admin/mandates/scheduledpresentation/").context["cl"].result_list
    assert {row.mandate_id for row in rows} == {mandate.pk} != {foreign.pk}


def test_batches_and_runs_span_branches_so_only_head_office_sees_them(mandate_world):
    presented(active_mandate(mandate_world["loan"], mandate_world["people"]))
    batch, run = PresentationBatch.objects.get(), JobRun.objects.get()
    ops = logged_in(mandate_world["people"]["ops"])
    for model, obj in (("mandates/presentationbatch", batch), ("core/jobrun", run)):
        assert list(ops.get(f"/admin/{model}/").context["cl"].result_list) == [obj]
        assert ops.get(f"/admin/{model}/{obj.pk}/change/").status_code == 200
    for user in (mandate_world["people"]["staff"], mandate_world["people"]["manager"]):
        client = logged_in(user)
        for model, obj in (("mandates/presentationbatch", batch), ("core/jobrun", run)):
            assert client.get(f"/admin/{model}/").status_code == 403, model
            assert client.get(f"/admin/{model}/{obj.pk}/change/").status_code == 403
        sidebar = client.get("/admin/mandates/mandate/").content.decode()
        assert "/admin/mandates/mandate/" in sidebar
        assert "/admin/mandates/presentationbatch/" not in sidebar
        assert "/admin/core/jobrun/" not in sidebar


# --- The partner's response file ------------------------------------------------------------


def _upload(client, partner, text: str, name="results.csv"):
    return client.post(
        UPLOAD,
        {"partner": partner.pk, "file": SimpleUploadedFile(name, text.encode(), "text/csv")},
    )


@pytest.fixture
def two_executions(mandate_world):
    """Two active mandates (one per branch), each with its first instalment presented."""
    own = active_mandate(mandate_world["loan"], mandate_world["people"])
    other = active_mandate(mandate_world["other_loan"], mandate_world["other_people"])
    run_date = max(
        ScheduledPresentation.objects.filter(mandate=m)
        .order_by("due_date")
        .first()
        .presentation_date
        for m in (own, other)
    )
    services.mandates_present_due(run_date=run_date)
    ids = []
    for mandate in (own, other):
        row = ScheduledPresentation.objects.filter(mandate=mandate).order_by("due_date").first()
        ids.append(services.execution_id_for(row, row.attempts))
    return {"partner": own.banking_partner, "ids": ids}


def test_a_good_file_is_applied_with_counts(mandate_world, two_executions):
    ok, bounce = two_executions["ids"]
    ops = logged_in(mandate_world["people"]["ops"])
    assert 'class="upload-link"' in ops.get(RESULTS).content.decode()
    text = f"execution_id,status,return_code,reason\n{ok},SUCCESS,,\n{bounce},BOUNCED,04,funds\n"
    response = _upload(ops, two_executions["partner"], text)
    assert response.status_code == 200
    counts = response.context["report"]["counts"]
    assert (counts["applied"], counts["duplicate"], counts["error"]) == (2, 0, 0)
    assert dict(ExecutionResult.objects.values_list("execution_id", "status")) == {
        ok: "SUCCESS",
        bounce: "BOUNCED",
    }
    assert LoanCharge.objects.get().loan == mandate_world["other_loan"]
    assert any("2 applied, 0 duplicate, 0 error(s)" in m for m in messages_of(response))

    again = _upload(ops, two_executions["partner"], text)
    counts = again.context["report"]["counts"]
    assert (counts["applied"], counts["duplicate"]) == (0, 2)
    assert ExecutionResult.objects.count() == 2 and LoanCharge.objects.count() == 1


def test_a_file_with_bad_lines_reports_each_and_applies_nothing(mandate_world, two_executions):
    ok, bounce = two_executions["ids"]
    text = "\n".join(
        [
            f"{ok},SUCCESS",  # 1: fine (no header)
            f"{bounce},BOUNCED",  # 2: no return code
            "999999-1,SUCCESS,,",  # 3: no such execution
            f"{bounce},PAID,,",  # 4: bad status
            f"{bounce},BOUNCED,ZZ,",  # 5: unknown code
            "",  # 6: blank lines are skipped
            f"{ok},BOUNCED,04,",  # 7: contradicts line 1
            "just-one-column",  # 8
        ]
    )
    response = _upload(logged_in(mandate_world["people"]["ops"]), two_executions["partner"], text)
    assert response.status_code == 200
    assert response.context["report"] is None
    numbers = [number for number, _ in response.context["form"].line_errors]
    assert numbers == [2, 3, 4, 5, 7, 8]
    html = response.content.decode()
    assert "nothing was applied" in html and "999999-1" in html
    assert not ExecutionResult.objects.exists()


def test_a_line_conflicting_with_a_recorded_result_or_another_partner_is_refused(
    mandate_world, two_executions
):
    ok, bounce = two_executions["ids"]
    partner = two_executions["partner"]
    services.execution_result_apply(partner_code=partner.code, execution_id=ok, status="SUCCESS")
    ops = logged_in(mandate_world["people"]["ops"])
    conflict = _upload(ops, partner, f"{bounce},SUCCESS\n{ok},BOUNCED,04\n")
    assert conflict.context["form"].line_errors == [
        (2, f"{ok} already has the result SUCCESS."),
    ]
    other_bank = BankingPartnerFactory(code="otherbank", name="Other Bank")
    foreign = _upload(ops, other_bank, f"{bounce},SUCCESS\n")
    assert foreign.context["form"].line_errors == [
        (1, f"No execution {bounce} for Other Bank."),
    ]
    assert ExecutionResult.objects.count() == 1


def test_duplicate_lines_in_one_file_apply_once(mandate_world, two_executions):
    ok, _ = two_executions["ids"]
    response = _upload(
        logged_in(mandate_world["people"]["ops"]), two_executions["partner"], f"{ok},SUCCESS\n" * 3
    )
    counts = response.context["report"]["counts"]
    assert (counts["applied"], counts["duplicate"]) == (1, 2)
    assert ExecutionResult.objects.count() == 1


def test_the_files_refusal_is_a_message_on_the_file_field(mandate_world, two_executions):
    ok, bounce = two_executions["ids"]
    ops = logged_in(mandate_world["people"]["ops"])
    bad_lines = _upload(ops, two_executions["partner"], f"{ok},SUCCESS\n{bounce},PAID\n")
    assert bad_lines.context["form"].errors["file"] == [
        "1 line(s) are invalid; nothing was applied."
    ]
    assert bad_lines.context["form"].line_errors == [
        (2, "Status must be SUCCESS or BOUNCED, not 'PAID'.")
    ]
    not_text = ops.post(
        UPLOAD,
        {
            "partner": two_executions["partner"].pk,
            "file": SimpleUploadedFile("results.csv", b"\xff\xfe\x00bad", "text/csv"),
        },
    )
    assert not_text.context["form"].errors["file"] == [
        "The file is not UTF-8 text (save it as CSV UTF-8)."
    ]
    empty = _upload(ops, two_executions["partner"], "execution_id,status\n\n")
    assert empty.context["form"].errors["file"] == ["The file has no results."]
    assert not ExecutionResult.objects.exists()


def test_a_file_line_meets_the_rules_of_every_result(mandate_world, two_executions):
    """The file's lines are checked by the service's one validation of a result: what it
    refuses in a file, it refuses from any other caller, with the same message."""
    ok, bounce = two_executions["ids"]
    partner = two_executions["partner"]
    long_reason = "x" * 201
    response = _upload(
        logged_in(mandate_world["people"]["ops"]),
        partner,
        f"{ok},SUCCESS,04\n{bounce},BOUNCED,04,{long_reason}\n",
    )
    line_errors = dict(response.context["form"].line_errors)
    for number, (status, code, reason) in {
        1: ("SUCCESS", "04", ""),
        2: ("BOUNCED", "04", long_reason),
    }.items():
        execution_id = ok if number == 1 else bounce
        with pytest.raises(ResultRejected) as refused:
            services.execution_result_apply(
                partner_code=partner.code,
                execution_id=execution_id,
                status=status,
                return_code=code,
                reason=reason,
            )
        assert line_errors[number] == refused.value.message
    assert not ExecutionResult.objects.exists()


def test_a_file_larger_than_the_limit_is_refused_unread(mandate_world, two_executions):
    with pytest.raises(ResponseFileRejected, match="larger than 5 MB"):
        services.response_file_read(
            content=b"x" * (services.MAX_FILE_BYTES + 1), partner=two_executions["partner"]
        )


def test_only_users_with_the_permission_may_upload(mandate_world):
    staff = logged_in(mandate_world["people"]["staff"])
    assert staff.get(UPLOAD).status_code == 403
    assert 'class="upload-link"' not in staff.get(RESULTS).content.decode()


# --- Loan charges: the waiver request ----------------------------------------------------------


def test_a_bounce_charge_waiver_is_requested_from_the_charges_list(mandate_world):
    people = mandate_world["people"]
    mandate = active_mandate(mandate_world["loan"], people)
    _, execution_id = presented(mandate)
    services.execution_result_apply(
        partner_code=mandate.banking_partner.code,
        execution_id=execution_id,
        status="BOUNCED",
        return_code="04",
    )
    charge = LoanCharge.objects.get()
    manager = logged_in(people["manager"])
    listing = manager.get(CHARGES)
    assert [c.pk for c in listing.context["cl"].result_list] == [charge.pk]
    assert 'class="waiver-request-link"' in listing.content.decode()

    url = f"{CHARGES}{charge.pk}/waiver/"
    form = manager.get(url)
    assert form.status_code == 200 and "590.00" in form.content.decode()
    empty = manager.post(url, {"reason": "  "})
    assert empty.status_code == 200 and "reason" in empty.context["form"].errors
    asked = manager.post(url, {"reason": "bank error"}, follow=True)
    assert any("Waiver requested" in m for m in messages_of(asked))
    request = ApprovalRequest.objects.get(kind="CHARGE_WAIVER")
    assert (request.status, request.maker, request.payload) == (
        "PENDING",
        people["manager"],
        {"charge_id": charge.pk},
    )
    html = manager.get(CHARGES).content.decode()
    assert "requested, waiting for a checker" in html
    twice = manager.post(url, {"reason": "again"}, follow=True)
    assert any("Waiver not requested" in m for m in messages_of(twice))

    outsider = UserFactory(
        role="Branch Manager", level=User.Level.BRANCH, home_branch=mandate_world["other"]
    )
    assert list(logged_in(outsider).get(CHARGES).context["cl"].result_list) == []
    assert logged_in(outsider).get(url).status_code == 302
    staff = logged_in(people["staff"])
    assert staff.get(CHARGES).status_code == 403  # branch staff do not see charges
