"""POST/GET /api/v1/transactions: idempotent ingestion and scoped reads."""

import json

import pytest
import yaml
from django.core.management import call_command

from api import scopes
from loans.models import LoanAccount
from payments.ddb_models import QueueItem, TransactionItem
from tests.factories import BranchFactory, UserFactory, key_header, make_api_client, make_loan

pytestmark = pytest.mark.django_db

URL = "/api/v1/transactions"
WRITE = (scopes.TRANSACTIONS_WRITE, scopes.TRANSACTIONS_READ)


@pytest.fixture
def setup():
    branch, other = BranchFactory(), BranchFactory()
    loan, foreign = make_loan(branch=branch), make_loan(branch=other)
    _, key = make_api_client(scopes=WRITE, branches=[branch])
    return {"branch": branch, "loan": loan, "foreign": foreign, "key": key}


def _post(client, key, body, idem="idem-key-0001", url=URL, **extra):
    headers = {**key_header(key), **extra}
    if idem is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = idem
    return client.post(url, data=json.dumps(body), content_type="application/json", **headers)


def _body(loan, amount="2500.00", **kw):
    return {"loan_account": loan.loan_number, "amount": amount, "mode": "UPI", **kw}


def test_post_creates_a_transaction_and_replays_it_for_the_same_key(client, setup):
    first = _post(client, setup["key"], _body(setup["loan"]))
    assert first.status_code == 201, first.content
    body = first.json()
    assert body["amount"] == "2500.00" and body["status"] == "RECEIVED"
    again = _post(client, setup["key"], _body(setup["loan"]))
    assert again.status_code == 201
    assert again.json() == body
    assert again["Idempotent-Replayed"] == "true"
    assert TransactionItem.count() == 1 and QueueItem.count() == 1


def test_same_key_with_another_body_is_409(client, setup):
    _post(client, setup["key"], _body(setup["loan"], amount="100.00"))
    response = _post(client, setup["key"], _body(setup["loan"], amount="100.01"))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_reused"


def test_the_idempotency_key_is_required(client, setup):
    response = _post(client, setup["key"], _body(setup["loan"]), idem=None)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_key_required"
    assert TransactionItem.count() == 0


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        (2500.5, "as a string"),
        ("12.345", "at most two decimals"),
        ("-5", "at most two decimals"),
        ("0.00", "more than zero"),
        ("99999999.00", "above the limit"),
        ("1e3", "at most two decimals"),
    ],
)
def test_bad_amounts_get_a_field_error_and_store_nothing(client, setup, amount, message):
    response = _post(client, setup["key"], _body(setup["loan"], amount=amount))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert message in error["fields"]["amount"][0]
    assert TransactionItem.count() == 0


def test_unknown_mode_and_malformed_json_are_clear_errors(client, setup):
    response = _post(client, setup["key"], _body(setup["loan"], mode="BITCOIN"))
    assert response.status_code == 400 and "mode" in response.json()["error"]["fields"]
    broken = client.post(
        URL,
        data="{not json",
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="idem-key-0002",
        **key_header(setup["key"]),
    )
    assert broken.status_code == 400
    assert broken.json()["error"]["code"] == "malformed_json"


def test_a_loan_of_another_branch_is_404_and_a_closed_loan_422(client, setup):
    response = _post(client, setup["key"], _body(setup["foreign"]))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "loan_not_found"
    LoanAccount.objects.filter(pk=setup["loan"].pk).update(status="CLOSED")
    response = _post(client, setup["key"], _body(setup["loan"]), idem="idem-key-0003")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "loan_not_active"


def test_a_client_without_the_write_scope_is_refused(client, setup):
    _, read_only = make_api_client(scopes=(scopes.TRANSACTIONS_READ,), branches=[setup["branch"]])
    response = _post(client, read_only, _body(setup["loan"]))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_batch_gives_a_result_per_item_and_replays_on_retry(client, setup):
    items = [
        _body(setup["loan"], amount="100.00"),
        _body(setup["foreign"], amount="100.00"),
        _body(setup["loan"], amount="oops"),
        _body(setup["loan"], amount="300.00", idempotency_key="own-key-12345"),
    ]
    response = _post(client, setup["key"], {"items": items}, url=f"{URL}/batch")
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 404, 400, 201]
    assert results[1]["error"]["code"] == "loan_not_found"
    assert "amount" in results[2]["error"]["fields"]
    retry = _post(client, setup["key"], {"items": items}, url=f"{URL}/batch").json()["results"]
    assert [r["replayed"] for r in retry] == [True, False, False, True]
    assert retry[0]["transaction"] == results[0]["transaction"]
    assert TransactionItem.count() == 2


def test_batch_refuses_more_than_100_items(client, setup):
    items = [_body(setup["loan"], amount="1.00")] * 101
    response = _post(client, setup["key"], {"items": items}, url=f"{URL}/batch")
    assert response.status_code == 400
    assert TransactionItem.count() == 0


def test_reads_by_id_by_loan_and_by_branch_day_are_scoped(client, setup):
    ids = [
        _post(
            client, setup["key"], _body(setup["loan"], amount=f"{i}.00"), idem=f"idem-k-{i:04d}"
        ).json()["txn_id"]
        for i in range(1, 4)
    ]
    headers = key_header(setup["key"])
    one = client.get(f"{URL}/{ids[0]}", **headers)
    assert one.status_code == 200 and one.json()["amount"] == "1.00"
    page = client.get(URL, {"loan_account": setup["loan"].loan_number, "page_size": 2}, **headers)
    assert page.status_code == 200
    first = page.json()
    assert [r["txn_id"] for r in first["results"]] == [ids[2], ids[1]]  # newest first
    rest = client.get(
        URL, {"loan_account": setup["loan"].loan_number, "cursor": first["next"]}, **headers
    ).json()
    assert [r["txn_id"] for r in rest["results"]] == [ids[0]]
    day = TransactionItem.get(ids[0]).business_date
    by_day = client.get(URL, {"branch": setup["branch"].code, "business_date": day}, **headers)
    assert {r["txn_id"] for r in by_day.json()["results"]} == set(ids)

    _, outsider = make_api_client(scopes=WRITE, branches=[setup["foreign"].branch])
    assert client.get(f"{URL}/{ids[0]}", **key_header(outsider)).status_code == 404
    response = client.get(URL, {"loan_account": setup["loan"].loan_number}, **key_header(outsider))
    assert response.status_code == 404
    forged = client.get(
        URL, {"loan_account": setup["loan"].loan_number, "cursor": "abc"}, **headers
    )
    assert forged.status_code == 400 and forged.json()["error"]["code"] == "invalid_cursor"
    assert client.get(URL, **headers).json()["error"]["code"] == "filter_required"


def test_a_transaction_id_that_cannot_exist_is_a_404_not_a_server_error(client, setup):
    headers = key_header(setup["key"])
    for txn_id in ("x" * 3000, "not-a-ulid", "%00"):
        response = client.get(f"{URL}/{txn_id}", **headers)
        assert response.status_code == 404, txn_id
        assert response.json()["error"]["code"] == "transaction_not_found"


def test_list_filters_with_a_nul_character_are_400_not_a_server_error(client, setup):
    headers = key_header(setup["key"])
    cases = [
        ({"loan_account": "LN\x00"}, "loan_account"),
        ({"branch": "B\x00", "business_date": "2026-01-05"}, "branch"),
    ]
    for params, field in cases:
        response = client.get(URL, params, **headers)
        assert response.status_code == 400, params
        error = response.json()["error"]
        assert error["code"] == "invalid" and list(error["fields"]) == [field]


def test_the_schema_documents_batch_items_and_the_503_of_reads(tmp_path):
    target = tmp_path / "schema.yml"
    call_command("spectacular", "--file", str(target))
    schema = yaml.safe_load(target.read_text())
    batch = schema["paths"]["/api/v1/transactions/batch"]["post"]["requestBody"]
    body = batch["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    items = schema["components"]["schemas"][body]["properties"]["items"]["items"]["anyOf"][0]
    assert items == {"$ref": "#/components/schemas/BatchItemRequest"}
    result = schema["components"]["schemas"]["BatchResult"]["properties"]["error"]
    assert result == {"$ref": "#/components/schemas/ErrorDetail"}
    for path in ("/api/v1/transactions", "/api/v1/transactions/{txn_id}"):
        assert "503" in schema["paths"][path]["get"]["responses"], path


def test_branch_staff_post_through_their_session(client, setup):
    staff = UserFactory(role="Branch Staff", home_branch=setup["branch"])
    client.force_login(staff)
    response = client.post(
        URL,
        data=json.dumps(_body(setup["loan"])),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="idem-staff-1",
    )
    assert response.status_code == 201, response.content
    assert TransactionItem.get(response.json()["txn_id"]).source == f"user:{staff.pk}"
