from decimal import Decimal

import pytest
from django.utils import timezone

from dynamo.connection import boto3_client
from payments.ddb_models import TransactionItem
from payments.services import business_date_for
from reconciliation.models import Dcr
from streams import aws_lambda
from tests.factories import branch_with_loan, pay

pytestmark = pytest.mark.django_db

ARN_BASE = "arn:aws:dynamodb:ap-south-1:123456789012"


def event(*txn_ids: str, name: str = "INSERT", table: str | None = None) -> dict:
    """A Lambda event of the transactions' stream, built from the items as they are."""
    table = table or TransactionItem.Meta.table_name
    client = boto3_client()
    records = []
    for n, txn_id in enumerate(txn_ids, start=1):
        image = client.get_item(
            TableName=TransactionItem.Meta.table_name, Key={"txn_id": {"S": txn_id}}
        )["Item"]
        records.append(
            {
                "eventID": f"e{n}",
                "eventName": name,
                "eventSource": "aws:dynamodb",
                "eventSourceARN": f"{ARN_BASE}:table/{table}/stream/2026-12-07T00:00:00.000",
                "dynamodb": {
                    "ApproximateCreationDateTime": timezone.now().timestamp(),
                    "Keys": {"txn_id": {"S": txn_id}},
                    "NewImage": image,
                    "SequenceNumber": f"{n:021d}",
                    "SizeBytes": 100,
                    "StreamViewType": "NEW_IMAGE",
                },
            }
        )
    return {"Records": records}


def test_the_lambda_handler_applies_a_batch_once_even_when_sent_twice():
    branch, loan = branch_with_loan()
    day = business_date_for(branch, timezone.now())
    ids = [pay(loan, "120.00", day=day), pay(loan, "80.00", mode="UPI", day=day)]
    batch = event(*ids)

    assert aws_lambda.handler(batch, None) == {"records": 2, "source": "transactions"}
    assert aws_lambda.handler(batch, None)["records"] == 2  # Lambda retries a batch

    dcr = Dcr.objects.get(branch=branch, business_date=day)
    assert (dcr.collected_count, dcr.collected_amount, dcr.cash_amount) == (
        2, Decimal("200.00"), Decimal("120.00"),
    )  # fmt: skip


def test_the_lambda_handler_refuses_a_stream_of_another_table_and_writes_nothing():
    branch, loan = branch_with_loan()
    txn_id = pay(loan, "120.00", day=business_date_for(branch, timezone.now()))

    with pytest.raises(LookupError, match="no stream source reads the table 'other'"):
        aws_lambda.handler(event(txn_id, table="other"), None)
    assert not Dcr.objects.filter(branch=branch).exists()


def test_an_empty_event_does_nothing():
    assert aws_lambda.handler({"Records": []}, None) == {"records": 0}
