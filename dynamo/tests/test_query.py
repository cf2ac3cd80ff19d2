"""dynamo.query: a partition's items as DynamoDB sends them, page after page; errors as
botocore parses them; other clients unaffected."""

import pytest
from botocore.exceptions import ClientError
from django.test import override_settings

from dynamo.connection import boto3_client
from dynamo.query import query_partition
from dynamo.tests.faults import inject
from payments.ddb_models import TransactionItem
from reconciliation.exceptions import StoreUnavailable
from reconciliation.models import Dcr
from reconciliation.selectors import branch_day_figures
from reconciliation.services import dcr_build_many
from tests.factories import branch_with_loan, days_ago, pay

pytestmark = pytest.mark.django_db

PARTITION = "7#2026-01-15"


def _put(n: int, **extra) -> None:
    item = {
        "txn_id": {"S": f"QT{n:04d}"},
        "branch_day": {"S": PARTITION},
        "created_at": {"S": f"2026-01-15T04:00:{n:02d}.000000Z"},
        "amount_paise": {"N": str(1000 + n)},
        "mode": {"S": "CASH"},
        "status": {"S": "POSTED"},
    } | extra
    boto3_client().put_item(TableName=TransactionItem.Meta.table_name, Item=item)


def _query(**kwargs):
    return query_partition(
        table=TransactionItem.Meta.table_name,
        index="branch_day",
        key_name="branch_day",
        key_value=PARTITION,
        **kwargs,
    )


def test_every_item_of_the_partition_page_after_page_as_botocore_would_return_it():
    for n in range(7):
        _put(n)
    _put(99, branch_day={"S": "8#2026-01-15"})  # another partition

    items = list(_query(attributes=["txn_id", "amount_paise", "status"], page_size=2))

    parsed = boto3_client().query(
        TableName=TransactionItem.Meta.table_name,
        IndexName="branch_day",
        KeyConditionExpression="branch_day = :k",
        ExpressionAttributeValues={":k": {"S": PARTITION}},
        ProjectionExpression="txn_id, amount_paise, #s",
        ExpressionAttributeNames={"#s": "status"},
    )["Items"]
    assert items == parsed
    assert [i["txn_id"]["S"] for i in items] == [f"QT{n:04d}" for n in range(7)]
    assert items[0] == {
        "txn_id": {"S": "QT0000"},
        "amount_paise": {"N": "1000"},
        "status": {"S": "POSTED"},
    }


def test_only_this_client_skips_the_parse():
    """The hook is the wire client's own: a binary value stays base64 text there (the
    documented limit) and is bytes for every other client."""
    _put(1, slip_scan={"B": b"\x00\x01slip"})
    [wire] = _query(attributes=["slip_scan"])
    [parsed] = boto3_client().query(
        TableName=TransactionItem.Meta.table_name,
        IndexName="branch_day",
        KeyConditionExpression="branch_day = :k",
        ExpressionAttributeValues={":k": {"S": PARTITION}},
        ProjectionExpression="slip_scan",
    )["Items"]
    assert wire == {"slip_scan": {"B": "AAFzbGlw"}}
    assert parsed == {"slip_scan": {"B": b"\x00\x01slip"}}


def test_an_error_answer_is_parsed_by_botocore_with_its_code():
    with pytest.raises(ClientError) as caught:
        list(
            query_partition(
                table="no_such_table",
                index=None,
                key_name="txn_id",
                key_value="x",
                attributes=["txn_id"],
            )
        )
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_a_throttled_read_is_store_unavailable_and_no_dcr_is_written():
    branch, loan = branch_with_loan()
    day = days_ago(1)
    pay(loan, "100.00", day=day)
    with inject("Query", "throttling", times=100) as injection:
        with pytest.raises(StoreUnavailable):
            branch_day_figures(branch_id=branch.pk, business_date=day)
        report = dcr_build_many(pairs=[(branch.pk, day)])
    assert injection.raised >= 2
    assert isinstance(report.failed[(branch.pk, day)], StoreUnavailable)
    assert report.written == 0
    assert not Dcr.objects.filter(branch=branch).exists()


@override_settings(
    DYNAMODB_ENDPOINT="http://127.0.0.1:9", DYNAMODB_MAX_RETRIES=0, DYNAMODB_CONNECT_TIMEOUT=1
)
def test_an_unreachable_store_is_store_unavailable():
    with pytest.raises(StoreUnavailable):
        branch_day_figures(branch_id=1, business_date=days_ago(1))
