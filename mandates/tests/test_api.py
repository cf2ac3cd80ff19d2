"""POST /api/v1/banking-partners/{code}/results: only that partner's client, each result
applied once, an outcome or an error per result."""

import json
import threading
from datetime import date
from decimal import Decimal

import pytest
import yaml
from django.core.management import call_command
from django.db import connection

from api import scopes
from api.models import ApiClient
from loans.models import LoanCharge
from mandates import services
from mandates.api.results import result_apply
from mandates.models import ExecutionResult, ReturnCodePolicy, ScheduledPresentation
from mandates.services import PartnerResult
from payments.ddb_models import TransactionItem
from tests.factories import (
    BankingPartnerFactory,
    UserFactory,
    active_mandate,
    key_header,
    make_api_client,
    make_loan,
)

pytestmark = pytest.mark.django_db


def url(code: str) -> str:
    return f"/api/v1/banking-partners/{code}/results"


@pytest.fixture
def partner_world(world):
    """Two active mandates at the sandbox partner (on the loan of the shared world's ``own``
    and on a second loan there), each with its first debit presented, and the partner's
    API client."""
    branch = world.branches["own"]
    people = world.people
    second = make_loan(branch=branch, disbursed_on=date(2026, 10, 1), tenure_months=12)
    mandates = [active_mandate(loan, people) for loan in (world.loans["own"], second)]
    firsts = [
        ScheduledPresentation.objects.filter(mandate=m).order_by("due_date").first()
        for m in mandates
    ]
    services.mandates_present_due(run_date=max(f.presentation_date for f in firsts))
    for row in firsts:
        row.refresh_from_db()
    partner = mandates[0].banking_partner
    _, key = make_api_client(
        scopes=[scopes.PARTNER_RESULTS],
        kind=ApiClient.Kind.BANKING_PARTNER,
        banking_partner=partner,
    )
    return {
        "partner": partner,
        "key": key,
        "mandates": mandates,
        "ids": [services.execution_id_for(row, row.attempts) for row in firsts],
        "branch": branch,
    }


def post(client, code, body, key=None, **extra):
    headers = key_header(key) if key else {}
    return client.post(
        url(code),
        data=body if isinstance(body, str) else json.dumps(body),
        content_type="application/json",
        **headers,
        **extra,
    )


def test_the_partner_applies_a_success_and_a_bounce(client, partner_world):
    ok, bounce = partner_world["ids"]
    body = {
        "results": [
            {"execution_id": ok, "status": "SUCCESS"},
            {
                "execution_id": bounce,
                "status": "BOUNCED",
                "return_code": "04",
                "reason": "Balance insufficient",
            },
        ]
    }
    response = post(client, partner_world["partner"].code, body, partner_world["key"])
    assert response.status_code == 200, response.content
    assert response.json() == {
        "results": [
            {"execution_id": ok, "outcome": "applied"},
            {"execution_id": bounce, "outcome": "applied"},
        ]
    }
    assert dict(ExecutionResult.objects.values_list("execution_id", "status")) == {
        ok: "SUCCESS",
        bounce: "BOUNCED",
    }
    (txn,) = list(TransactionItem.scan())
    assert txn.mode == "NACH" and txn.loan_number == partner_world["mandates"][0].loan.loan_number
    charge = LoanCharge.objects.get()
    assert (charge.loan, charge.total) == (partner_world["mandates"][1].loan, Decimal("590.00"))


def test_a_replay_is_a_duplicate_and_changes_nothing(client, partner_world):
    ok, bounce = partner_world["ids"]
    body = {
        "results": [
            {"execution_id": ok, "status": "SUCCESS"},
            {"execution_id": bounce, "status": "BOUNCED", "return_code": "04"},
        ]
    }
    post(client, partner_world["partner"].code, body, partner_world["key"])
    again = post(client, partner_world["partner"].code, body, partner_world["key"])
    assert again.status_code == 200
    assert [r["outcome"] for r in again.json()["results"]] == ["duplicate", "duplicate"]
    assert ExecutionResult.objects.count() == 2
    assert LoanCharge.objects.count() == 1
    assert len(list(TransactionItem.scan())) == 1


def test_a_conflicting_result_is_that_items_error(client, partner_world):
    ok, bounce = partner_world["ids"]
    first_time = {"results": [{"execution_id": ok, "status": "SUCCESS"}]}
    post(client, partner_world["partner"].code, first_time, partner_world["key"])
    response = post(
        client,
        partner_world["partner"].code,
        {
            "results": [
                {"execution_id": ok, "status": "BOUNCED", "return_code": "04"},
                {"execution_id": bounce, "status": "SUCCESS"},
                {"execution_id": "424242-1", "status": "SUCCESS"},
                {"execution_id": bounce, "status": "BOUNCED"},
            ]
        },
        partner_world["key"],
    )
    assert response.status_code == 200
    first, second, third, fourth = response.json()["results"]
    assert first["execution_id"] == ok and first["error"]["code"] == "result_conflict"
    assert "outcome" not in first
    assert second == {"execution_id": bounce, "outcome": "applied"}
    assert third["error"]["code"] == "execution_not_found"
    assert fourth["error"]["code"] == "invalid"
    assert fourth["error"]["fields"] == {"return_code": ["A bounce needs its return code."]}
    assert ExecutionResult.objects.get(execution_id=ok).status == "SUCCESS"
    assert not LoanCharge.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_same_result_delivered_twice_at_once_is_applied_once(partner_world):
    _, bounce = partner_world["ids"]
    # An earlier transactional test may have flushed the seeded return codes.
    ReturnCodePolicy.objects.get_or_create(
        code="04",
        defaults={"description": "Balance insufficient", "retryable": True, "max_presentations": 3},
    )
    barrier = threading.Barrier(2)
    outcomes = []

    def deliver():
        barrier.wait()
        try:
            outcome = result_apply(
                partner_code=partner_world["partner"].code,
                result=PartnerResult(bounce, "BOUNCED", "04"),
            )
            outcomes.append(outcome.outcome or outcome.error.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["applied", "duplicate"]
    assert ExecutionResult.objects.count() == 1 and LoanCharge.objects.count() == 1


def test_another_partners_client_is_refused(client, partner_world):
    other = BankingPartnerFactory(code="otherbank", name="Other Bank")
    _, other_key = make_api_client(
        scopes=[scopes.PARTNER_RESULTS],
        kind=ApiClient.Kind.BANKING_PARTNER,
        banking_partner=other,
    )
    body = {"results": [{"execution_id": partner_world["ids"][0], "status": "SUCCESS"}]}
    response = post(client, partner_world["partner"].code, body, other_key)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    # at its own URL it may post, but the execution is not its own
    own = post(client, other.code, body, other_key)
    assert own.json()["results"][0]["error"]["code"] == "execution_not_found"
    assert not ExecutionResult.objects.exists()


def test_an_integration_client_is_refused_even_with_the_scope(client, partner_world):
    _, key = make_api_client(scopes=[scopes.PARTNER_RESULTS], all_branches=True)
    body = {"results": [{"execution_id": partner_world["ids"][0], "status": "SUCCESS"}]}
    response = post(client, partner_world["partner"].code, body, key)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    _, plain = make_api_client(scopes=[scopes.TRANSACTIONS_WRITE], all_branches=True)
    assert post(client, partner_world["partner"].code, body, plain).status_code == 403
    assert not ExecutionResult.objects.exists()


def test_the_partner_client_without_the_scope_is_refused(client, partner_world):
    _, key = make_api_client(
        scopes=[scopes.LOANS_READ],
        kind=ApiClient.Kind.BANKING_PARTNER,
        banking_partner=partner_world["partner"],
    )
    body = {"results": [{"execution_id": partner_world["ids"][0], "status": "SUCCESS"}]}
    response = post(client, partner_world["partner"].code, body, key)
    assert response.status_code == 403
    assert "partner:results" in response.json()["error"]["message"]


def test_session_users_are_refused_and_anonymous_callers_unauthenticated(client, partner_world):
    body = {"results": [{"execution_id": partner_world["ids"][0], "status": "SUCCESS"}]}
    anonymous = post(client, partner_world["partner"].code, body)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "not_authenticated"
    for user in (
        UserFactory(role="Operations"),
        UserFactory(role="Branch Manager", home_branch=partner_world["branch"]),
    ):
        client.force_login(user)
        response = post(client, partner_world["partner"].code, body)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"
    assert not ExecutionResult.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        {"results": []},
        {"results": "SUCCESS"},
        {"execution_id": "1-1", "status": "SUCCESS"},
        {"results": [{"execution_id": "1-1", "status": "SUCCESS"}] * 501},
    ],
)
def test_a_malformed_body_is_a_400_in_the_error_envelope(client, partner_world, body):
    response = post(client, partner_world["partner"].code, body, partner_world["key"])
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] in {"invalid", "malformed_json"}
    assert not ExecutionResult.objects.exists()


def test_an_unknown_partner_is_a_404_for_a_superuser(client, partner_world):
    client.force_login(UserFactory(is_superuser=True))
    response = post(client, "nobank", {"results": [{"execution_id": "1-1", "status": "SUCCESS"}]})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "partner_not_found"


def test_the_endpoint_is_documented_and_the_schema_validates(tmp_path):
    target = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    schema = yaml.safe_load(target.read_text())
    operation = schema["paths"]["/api/v1/banking-partners/{code}/results"]["post"]
    assert "partner:results" in operation["description"]
    assert set(operation["responses"]) >= {"200", "400", "401", "403", "404"}
    outcome = schema["components"]["schemas"]["ResultOutcome"]["properties"]
    assert "#/components/schemas/ErrorDetail" in json.dumps(outcome["error"])
    request = schema["components"]["schemas"]["PartnerResultsRequest"]["properties"]["results"]
    assert request["items"]["anyOf"][0] == {"$ref": "#/components/schemas/PartnerResultRequest"}
