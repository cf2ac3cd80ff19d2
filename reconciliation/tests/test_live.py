"""Today's figures from stream records (the records as DynamoDB Streams sends them, built
from the items DynamoDB Local holds)."""

from decimal import Decimal

import pytest
from django.utils import timezone

from dynamo.connection import boto3_client
from payments.ddb_models import TransactionItem
from payments.services import business_date_for
from reconciliation import services
from reconciliation.models import Dcr
from tests.factories import branch_with_loan, days_ago, pay

pytestmark = pytest.mark.django_db


def records(*txn_ids: str) -> list[dict]:
    client = boto3_client()
    return [
        {
            "eventName": "MODIFY",
            "dynamodb": {
                "NewImage": client.get_item(
                    TableName=TransactionItem.Meta.table_name, Key={"txn_id": {"S": txn_id}}
                )["Item"],
                "SequenceNumber": "1",
                "ApproximateCreationDateTime": timezone.now().timestamp(),
            },
        }
        for txn_id in txn_ids
    ]


def test_a_closed_business_date_is_left_to_the_daily_job():
    branch, loan = branch_with_loan()
    txn_id = pay(loan, "100.00", day=days_ago(1))  # back-dated: a closed date

    report = services.dcr_live_apply(records=records(txn_id))

    assert (report.moved, report.skipped) == (0, 1)
    assert not Dcr.objects.filter(branch=branch).exists()


def test_a_submitted_dcr_of_today_is_never_written():
    branch, loan = branch_with_loan()
    day = business_date_for(branch, timezone.now())
    first = pay(loan, "100.00", day=day)
    services.dcr_live_apply(records=records(first))
    Dcr.objects.filter(branch=branch).update(status="SUBMITTED")
    second = pay(loan, "50.00", day=day)

    report = services.dcr_live_apply(records=records(second))

    assert report.skipped == 1
    dcr = Dcr.objects.get(branch=branch)
    assert (dcr.collected_amount, dcr.txn_ids) == (Decimal("100.00"), [first])


def test_removals_unknown_branches_and_foreign_images_are_skipped():
    branch, loan = branch_with_loan()
    txn_id = pay(loan, "100.00", day=business_date_for(branch, timezone.now()))
    [record] = records(txn_id)
    unknown = {**record, "dynamodb": {**record["dynamodb"], "NewImage": {
        **record["dynamodb"]["NewImage"], "branch_id": {"N": "999999999"}}}}  # fmt: skip
    removal = {"eventName": "REMOVE", "dynamodb": {"Keys": {"txn_id": {"S": txn_id}}}}
    foreign = {"eventName": "INSERT", "dynamodb": {"NewImage": {"pk": {"S": "x"}}}}

    report = services.dcr_live_apply(records=[unknown, removal, foreign])

    assert (report.moved, report.skipped) == (0, 3)
    assert not Dcr.objects.exists()


def test_an_older_record_after_a_newer_one_changes_nothing():
    branch, loan = branch_with_loan()
    day = business_date_for(branch, timezone.now())
    txn_id = pay(loan, "100.00", day=day)
    received = records(txn_id)
    TransactionItem(txn_id).update(actions=[TransactionItem.status.set("FAILED")])
    failed = records(txn_id)

    services.dcr_live_apply(records=received + failed)  # in one batch
    services.dcr_live_apply(records=received)  # and again, late

    dcr = Dcr.objects.get(branch=branch)
    assert (dcr.collected_count, dcr.excluded_count, dcr.excluded_amount) == (
        0,
        1,
        Decimal("100.00"),
    )
    assert dcr.excluded_txn_ids == [txn_id] and dcr.txn_ids == []
    assert list(dcr.lines.values_list("dimension", "key", "count")) == [("EXCLUDED", "FAILED", 1)]
