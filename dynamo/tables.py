"""Create, describe and delete the tables of every registered model, idempotently."""

from __future__ import annotations

import time
from dataclasses import dataclass

from botocore.exceptions import ClientError
from django.conf import settings
from pynamodb.models import Model

from . import definition, registry
from .connection import boto3_client


@dataclass
class TableReport:
    name: str
    action: str
    detail: str = ""


def _gsi_definitions(model: type[Model]) -> dict[str, dict]:
    schema = model._get_schema()
    return {index["index_name"]: index for index in schema["global_secondary_indexes"]}


def ensure_table(model: type[Model], *, client=None) -> TableReport:
    """Create the table if missing; add missing GSIs and TTL to an existing one. With
    ``DYNAMODB_TABLE_PROTECTION`` (AWS), also point-in-time recovery, KMS encryption, tags
    and deletion protection, on a new table and on an existing one."""
    client = client or boto3_client()
    name = model.Meta.table_name
    protected = settings.DYNAMODB_TABLE_PROTECTION
    if not model.exists():
        client.create_table(**definition.create_table_request(model, protected=protected))
        client.get_waiter("table_exists").wait(
            TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 600}
        )
        _ensure_ttl(model, client)
        if protected:
            _ensure_protection(model, client)
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
    changed = _ensure_protection(model, client) if protected else []
    if _ensure_stream(model, client, described):
        changed.append(f"stream {model.Meta.stream_view_type} turned on")
    if added or changed:
        what = [f"added indexes {', '.join(added)}"] if added else []
        return TableReport(name, "updated", "; ".join(what + changed))
    return TableReport(name, "exists", _summary(model))


def _ensure_protection(model: type[Model], client) -> list[str]:
    """Point-in-time recovery, KMS encryption (with the configured key) and deletion
    protection on the table, as the template has them; what had to be changed."""
    name = model.Meta.table_name
    changed = []
    backups = client.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    recovery = backups.get("PointInTimeRecoveryDescription", {})
    if recovery.get("PointInTimeRecoveryStatus") != "ENABLED":
        client.update_continuous_backups(
            TableName=name,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        )
        changed.append("point-in-time recovery enabled")
    described = client.describe_table(TableName=name)["Table"]
    sse = described.get("SSEDescription") or {}
    wanted_key = settings.DYNAMODB_KMS_KEY
    key_differs = bool(wanted_key) and not _same_key(sse.get("KMSMasterKeyArn", ""), wanted_key)
    encrypted = sse.get("SSEType") == "KMS" and sse.get("Status") in {"ENABLED", "UPDATING"}
    if (not encrypted or key_differs) and _update(
        client, TableName=name, SSESpecification=definition.sse_specification()
    ):
        changed.append("KMS encryption set")
        _wait_for_table(client, name)
    deletion = settings.DYNAMODB_DELETION_PROTECTION
    if bool(described.get("DeletionProtectionEnabled")) != deletion:
        client.update_table(TableName=name, DeletionProtectionEnabled=deletion)
        changed.append(f"deletion protection {'on' if deletion else 'off'}")
        _wait_for_table(client, name)
    if settings.DYNAMODB_TAGS:
        client.tag_resource(ResourceArn=described["TableArn"], Tags=definition.tags())
    return changed


def _update(client, **request) -> bool:
    """UpdateTable; False when DynamoDB finds nothing to change (DynamoDB Local takes and
    ignores encryption settings, so it never reports them as set)."""
    try:
        client.update_table(**request)
    except ClientError as exc:
        error = exc.response["Error"]
        if error.get("Code") == "ValidationException" and "Nothing to update" in error.get(
            "Message", ""
        ):
            return False
        raise
    return True


def _same_key(arn: str, wanted: str) -> bool:
    """A key ARN against the configured id, ARN or alias (an alias cannot be compared
    without KMS: taken as the same)."""
    return "alias/" in wanted or arn.endswith(wanted)


def _wait_for_table(client, table: str, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if client.describe_table(TableName=table)["Table"]["TableStatus"] == "ACTIVE":
            return
        time.sleep(1)
    raise TimeoutError(f"{table} is not active after {timeout_s:.0f} s")


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
    client = boto3_client()
    if client.describe_table(TableName=name)["Table"].get("DeletionProtectionEnabled"):
        return TableReport(name, "kept", "deletion protection is on: turn it off first")
    try:
        client.delete_table(TableName=name)
    except ClientError as exc:
        return TableReport(name, "kept", exc.response["Error"].get("Message", str(exc)))
    client.get_waiter("table_not_exists").wait(
        TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
    )
    return TableReport(name, "deleted")


def ensure_all() -> list[TableReport]:
    return [ensure_table(model) for model in registry.models()]


def delete_all() -> list[TableReport]:
    return [delete_table(model) for model in registry.models()]
