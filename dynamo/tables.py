"""Create, describe and delete the tables of every registered model, idempotently."""

from __future__ import annotations

import time
from dataclasses import dataclass

from pynamodb.models import Model

from . import registry
from .connection import boto3_client


@dataclass
class TableReport:
    name: str
    action: str
    detail: str = ""


def _gsi_definitions(model: type[Model]) -> dict[str, dict]:
    schema = model._get_schema()
    return {index["index_name"]: index for index in schema["global_secondary_indexes"]}


def ensure_table(model: type[Model]) -> TableReport:
    """Create the table if missing; add missing GSIs and TTL to an existing one."""
    client = boto3_client()
    name = model.Meta.table_name
    if not model.exists():
        model.create_table(wait=True, billing_mode="PAY_PER_REQUEST")
        return TableReport(name, "created", _summary(model))
    described = client.describe_table(TableName=name)["Table"]
    existing = {i["IndexName"] for i in described.get("GlobalSecondaryIndexes", [])}
    added = []
    schema = model._get_schema()
    attr_types = {a["AttributeName"]: a["AttributeType"] for a in schema["attribute_definitions"]}
    for index_name, index in _gsi_definitions(model).items():
        if index_name in existing:
            continue
        # DynamoDB wants the hash key first; PynamoDB lists an index's keys by attribute name.
        key_schema = sorted(index["key_schema"], key=lambda key: key["KeyType"] != "HASH")
        client.update_table(
            TableName=name,
            AttributeDefinitions=[
                {
                    "AttributeName": k["AttributeName"],
                    "AttributeType": attr_types[k["AttributeName"]],
                }
                for k in key_schema
            ],
            GlobalSecondaryIndexUpdates=[
                {
                    "Create": {
                        "IndexName": index_name,
                        "KeySchema": key_schema,
                        "Projection": {"ProjectionType": index["projection"]["ProjectionType"]},
                    }
                }
            ],
        )
        _wait_for_index(client, name, index_name)  # one index at a time may be built
        added.append(index_name)
    _ensure_ttl(model, client)
    if _ensure_stream(model, client, described):
        added.append(f"stream {model.Meta.stream_view_type}")
    if added:
        return TableReport(name, "updated", f"added {', '.join(added)}")
    return TableReport(name, "exists", _summary(model))


def stream_view_type(model: type[Model]) -> str | None:
    """The stream a model declares (``Meta.stream_view_type``), or None."""
    return getattr(model.Meta, "stream_view_type", None)


def _ensure_stream(model: type[Model], client, described: dict) -> bool:
    """Turn on the model's stream on an existing table; True when it was turned on. A
    stream of another view type is left alone (DynamoDB turns a stream off before another
    can be turned on, and that would lose what the processor has not read yet)."""
    view_type = stream_view_type(model)
    if view_type is None or described.get("StreamSpecification", {}).get("StreamEnabled"):
        return False
    client.update_table(
        TableName=model.Meta.table_name,
        StreamSpecification={"StreamEnabled": True, "StreamViewType": view_type},
    )
    return True


def latest_stream_arn(model: type[Model]) -> str | None:
    """The ARN of the table's latest stream (None: it never had one). A stream turned off
    keeps its ARN here, and its records stay readable for 24 hours."""
    table = boto3_client().describe_table(TableName=model.Meta.table_name)["Table"]
    return table.get("LatestStreamArn")


def _wait_for_index(client, table: str, index_name: str, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        described = client.describe_table(TableName=table)["Table"]
        statuses = {
            i["IndexName"]: i.get("IndexStatus")
            for i in described.get("GlobalSecondaryIndexes", [])
        }
        if described["TableStatus"] == "ACTIVE" and statuses.get(index_name) == "ACTIVE":
            return
        time.sleep(1)
    raise TimeoutError(f"index {index_name} of {table} is not active after {timeout_s:.0f} s")


def _ensure_ttl(model: type[Model], client) -> None:
    ttl = model._ttl_attribute()
    if ttl is None:
        return
    described = client.describe_time_to_live(TableName=model.Meta.table_name)
    if described["TimeToLiveDescription"].get("TimeToLiveStatus") in {"ENABLED", "ENABLING"}:
        return
    client.update_time_to_live(
        TableName=model.Meta.table_name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl.attr_name},
    )


def _summary(model: type[Model]) -> str:
    indexes = sorted(_gsi_definitions(model))
    ttl = model._ttl_attribute()
    parts = [f"indexes: {', '.join(indexes) or 'none'}"]
    if ttl is not None:
        parts.append(f"ttl: {ttl.attr_name}")
    if stream_view_type(model):
        parts.append(f"stream: {stream_view_type(model)}")
    return "; ".join(parts)


def describe_table(model: type[Model]) -> TableReport:
    client = boto3_client()
    name = model.Meta.table_name
    if not model.exists():
        return TableReport(name, "missing")
    table = client.describe_table(TableName=name)["Table"]
    ttl = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    indexes = ", ".join(
        f"{i['IndexName']} ({i['IndexStatus']})" for i in table.get("GlobalSecondaryIndexes", [])
    )
    stream = table.get("StreamSpecification", {})
    detail = (
        f"status {table['TableStatus']}, ~{table.get('ItemCount', 0)} items, "
        f"indexes: {indexes or 'none'}, ttl: {ttl.get('TimeToLiveStatus', 'DISABLED')}, "
        f"stream: {stream.get('StreamViewType', 'none') if stream.get('StreamEnabled') else 'none'}"
    )
    return TableReport(name, "exists", detail)


def delete_table(model: type[Model]) -> TableReport:
    name = model.Meta.table_name
    if not model.exists():
        return TableReport(name, "missing")
    model.delete_table()
    return TableReport(name, "deleted")


def ensure_all() -> list[TableReport]:
    return [ensure_table(model) for model in registry.models()]


def delete_all() -> list[TableReport]:
    return [delete_table(model) for model in registry.models()]
