"""dynamo.wire: the hand-signed DynamoDB call. Its signature is botocore's, byte for byte;
against DynamoDB Local it writes, and a cancelled transaction comes back with its reasons
(and the holder's item) as PynamoDB reports them; an answer AWS gives only in trouble (a 5xx,
a damaged body) is retried; an unreachable store is botocore's connection error, which the
application reads as "unavailable"; a kept-alive connection the server dropped is replaced."""

import datetime as dt
import http.server
import json
import threading
import uuid
import zlib

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError, EndpointConnectionError
from django.test import override_settings
from pynamodb.exceptions import TransactWriteError

from dynamo.errors import is_unavailable
from dynamo.transactions import transact_put
from dynamo.wire import WireClient, wire_client
from payments.ddb_models import TransactionItem

pytestmark = pytest.mark.django_db


def _botocore_signed(client: WireClient, payload: bytes, token: str | None) -> AWSRequest:
    access_key, secret, _ = client.credentials()
    request = AWSRequest(
        method="POST",
        url=client.endpoint + "/",
        data=payload,
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810.TransactWriteItems",
        },
    )
    SigV4Auth(Credentials(access_key, secret, token), "dynamodb", client.region).add_auth(request)
    return request


@pytest.mark.parametrize("token", [None, "a-session-token"])
def test_the_signature_is_botocores(token):
    client = WireClient()
    if token:
        access_key, secret, _ = client.credentials()
        client._static = (access_key, secret, token)
    payload = b'{"TransactItems":[]}'
    botocores = _botocore_signed(client, payload, token)
    moment = dt.datetime.strptime(botocores.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
    moment = moment.replace(tzinfo=dt.UTC)  # the moment botocore signed at
    headers = client.signed_headers("TransactWriteItems", payload, moment)
    assert headers["authorization"] == botocores.headers["Authorization"]
    assert headers.get("x-amz-security-token") == token
    # another body, another signature
    other = client.signed_headers("TransactWriteItems", b"{}", moment)["authorization"]
    assert other != headers["authorization"]


def _item(txn_id: str) -> dict:
    return {
        "txn_id": {"S": txn_id},
        "branch_day": {"S": "7#2026-12-08"},
        "created_at": {"S": "2026-12-08T04:00:00.000000Z"},
        "amount_paise": {"N": "1000"},
        "mode": {"S": "CASH"},
        "status": {"S": "RECEIVED"},
    }


def _put_absent(txn_id: str) -> dict:
    return {
        "TableName": TransactionItem.Meta.table_name,
        "Item": _item(txn_id),
        "ConditionExpression": "attribute_not_exists(txn_id)",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


def test_a_transaction_is_written_and_a_failed_condition_comes_back_with_its_reasons():
    transact_put([_put_absent("W1"), _put_absent("W2")], client_request_token=str(uuid.uuid4()))
    assert TransactionItem.get("W1", consistent_read=True).amount_paise == 1000
    with pytest.raises(TransactWriteError) as raised:
        transact_put([_put_absent("W3"), _put_absent("W2")])
    reasons = raised.value.cancellation_reasons
    assert reasons[0] is None
    assert reasons[1].code == "ConditionalCheckFailed"
    assert reasons[1].raw_item["txn_id"] == {"S": "W2"}  # the holder, as ALL_OLD returns it
    assert raised.value.cause_response_code == "TransactionCanceledException"
    assert not is_unavailable(raised.value)
    with pytest.raises(TransactionItem.DoesNotExist):
        TransactionItem.get("W3", consistent_read=True)  # all or nothing


def test_an_error_answer_is_a_client_error_with_its_code_not_retried():
    calls = []
    client = wire_client()
    original = client._attempt

    def counting(operation, payload):
        calls.append(operation)
        return original(operation, payload)

    client._attempt = counting
    try:
        with pytest.raises(ClientError) as raised:
            client.call("TransactWriteItems", {"TransactItems": [{"Put": {"TableName": "none"}}]})
    finally:
        del client._attempt
    code = raised.value.response["Error"]["Code"]
    assert code in {"ValidationException", "ResourceNotFoundException"}
    assert calls == ["TransactWriteItems"]


def test_an_unreachable_store_is_a_connection_error_read_as_unavailable():
    unreachable = override_settings(DYNAMODB_ENDPOINT="http://127.0.0.1:9", DYNAMODB_MAX_RETRIES=2)
    with unreachable, pytest.raises(TransactWriteError) as raised:
        transact_put([_put_absent("W9")])
    assert isinstance(raised.value.cause, EndpointConnectionError)
    assert is_unavailable(raised.value)


def test_a_connection_the_server_dropped_is_replaced():
    client = wire_client()
    transact_put([_put_absent("K1")])
    kept = client._local.connection
    kept.sock.close()  # as when the server closes an idle keep-alive connection
    transact_put([_put_absent("K2")])
    assert client._local.connection is not kept
    assert TransactionItem.get("K2", consistent_read=True).txn_id == "K2"


class _Scripted(http.server.BaseHTTPRequestHandler):
    """An endpoint answering from a script: (status, body, crc-to-send or None)."""

    script: list = []
    seen: list = []

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).seen.append(self.headers["X-Amz-Target"])
        status, body, crc = type(self).script.pop(0)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amz-crc32", str(zlib.crc32(data) if crc is None else crc))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def scripted():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Scripted.seen = []
    try:
        with override_settings(DYNAMODB_ENDPOINT=f"http://127.0.0.1:{server.server_port}"):
            yield _Scripted
    finally:
        server.shutdown()
        server.server_close()


def test_a_server_error_and_a_damaged_answer_are_retried(scripted):
    scripted.script = [
        (500, {"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError"}, None),
        (200, {}, 12345),  # the body does not match its CRC32
        (200, {}, None),
    ]
    assert wire_client().call("TransactWriteItems", {"TransactItems": []}) == {}
    assert len(scripted.seen) == 3


def test_throttling_that_outlasts_the_retries_is_raised_as_aws_answered_it(scripted):
    throttled = {
        "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
        "message": "Rate of requests exceeds the allowed throughput.",
    }
    scripted.script = [(400, throttled, None)] * 4
    with override_settings(DYNAMODB_MAX_RETRIES=3), pytest.raises(ClientError) as raised:
        wire_client().call("TransactWriteItems", {"TransactItems": []})
    assert raised.value.response["Error"] == {
        "Code": "ThrottlingException",
        "Message": "Rate of requests exceeds the allowed throughput.",
    }
    assert len(scripted.seen) == 4
    assert is_unavailable(raised.value)
