"""Query a partition's items as DynamoDB sends them, for reads of many items at once.

botocore checks every attribute of every item in a response against the service model
before returning it (boto/boto3#2928): for a million small items that walk costs more
than the HTTP and the JSON together, and it holds the GIL. DynamoDB's wire format is
already the ``{"S": ...}`` / ``{"N": ...}`` dicts botocore returns for strings and
numbers, so this client takes the items out of a successful Query's body with
``json.loads`` before botocore parses what is left (the counts and ``LastEvaluatedKey``).
Errors are left to botocore whole: its retries, throttling and error codes work as for
any client. Only for string and number attributes: a binary value would stay base64 text.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

from .connection import boto3_client, settings_key

_lock = threading.Lock()
_clients: dict[tuple, object] = {}


def _items_unparsed(response_dict: dict, customized_response_dict: dict, **_) -> None:
    """botocore's ``before-parse`` hook: the items go to the result as they are."""
    if response_dict.get("status_code") != 200:
        return
    body = json.loads(response_dict["body"])
    customized_response_dict["Items"] = body.pop("Items", [])
    response_dict["body"] = json.dumps(body).encode()


def wire_client():
    """A shared boto3 client whose Query answers carry the items unparsed (boto3 clients
    are thread-safe; the hook is this client's own, other clients parse as usual)."""
    key = settings_key()
    client = _clients.get(key)
    if client is None:
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = boto3_client()
                client.meta.events.register("before-parse.dynamodb.Query", _items_unparsed)
                _clients[key] = client
    return client


def query_partition(
    *,
    table: str,
    index: str | None,
    key_name: str,
    key_value: str,
    attributes: list[str],
    page_size: int | None = None,
) -> Iterator[dict]:
    """Every item of one partition (of the table or of ``index``), page after page (of
    up to 1 MB, or ``page_size`` items), with only ``attributes``; each item as DynamoDB
    sends it (``{"name": {"S": "..."}}``)."""
    client = wire_client()
    request = {
        "TableName": table,
        "KeyConditionExpression": "#k = :k",
        "ExpressionAttributeNames": {"#k": key_name}
        | {f"#a{i}": name for i, name in enumerate(attributes)},
        "ExpressionAttributeValues": {":k": {"S": key_value}},
        "ProjectionExpression": ", ".join(f"#a{i}" for i in range(len(attributes))),
    }
    if index:
        request["IndexName"] = index
    if page_size:
        request["Limit"] = page_size
    while True:
        page = client.query(**request)
        yield from page["Items"]
        if "LastEvaluatedKey" not in page:
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
