"""One description of a table, read from its PynamoDB model and the settings: what
``ddb_tables create`` asks DynamoDB for and what ``ddb_tables template`` writes into the
CloudFormation template, so that code, tables and template never diverge.

The model gives the keys, attribute types, global and local secondary indexes (with their
projection), the TTL attribute and, when its ``Meta`` declares ``stream_view_type``
(PynamoDB's own name, which its ``create_table`` reads too), the stream. The settings give
what the model does not know: the KMS key (``DYNAMODB_KMS_KEY``; empty is the AWS managed
key of DynamoDB), the tags (``DYNAMODB_TAGS``), deletion protection
(``DYNAMODB_DELETION_PROTECTION``) and the capacity budget of each table and index
(``DYNAMODB_CAPACITY_BUDGET_READ``/``_WRITE``, overridden per table or ``table.index`` by
``DYNAMODB_CAPACITY_BUDGETS``) that the template's CloudWatch alarms compare with.
Billing is always on demand (PAY_PER_REQUEST), point-in-time recovery always on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from pynamodb.models import Model


@dataclass(frozen=True)
class Budget:
    """Consumed capacity units a second a table or index is expected to stay under."""

    read: int
    write: int


@dataclass(frozen=True)
class IndexDefinition:
    name: str
    key_schema: list[dict]
    projection: dict
    local: bool = False


@dataclass(frozen=True)
class TableDefinition:
    base_name: str  # without the environment's prefix
    attribute_definitions: list[dict]
    key_schema: list[dict]
    indexes: list[IndexDefinition] = field(default_factory=list)
    ttl_attribute: str | None = None
    stream_view_type: str | None = None

    @property
    def global_indexes(self) -> list[IndexDefinition]:
        return [index for index in self.indexes if not index.local]

    @property
    def local_indexes(self) -> list[IndexDefinition]:
        return [index for index in self.indexes if index.local]


def _hash_first(key_schema: list[dict]) -> list[dict]:
    # DynamoDB wants the hash key first; PynamoDB lists an index's keys by attribute name.
    return [
        {"AttributeName": k["AttributeName"], "KeyType": k["KeyType"]}
        for k in sorted(key_schema, key=lambda key: key["KeyType"] != "HASH")
    ]


def _projection(raw: dict) -> dict:
    projection = {"ProjectionType": raw["ProjectionType"]}
    if raw.get("NonKeyAttributes"):
        projection["NonKeyAttributes"] = sorted(raw["NonKeyAttributes"])
    return projection


def table_definition(model: type[Model]) -> TableDefinition:
    schema = model._get_schema()
    indexes = [
        IndexDefinition(
            name=index["index_name"],
            key_schema=_hash_first(index["key_schema"]),
            projection=_projection(index["projection"]),
            local=local,
        )
        for local, kind in ((False, "global_secondary_indexes"), (True, "local_secondary_indexes"))
        for index in schema.get(kind, [])
    ]
    ttl = model._ttl_attribute()
    return TableDefinition(
        base_name=model.Meta.base_table_name,
        attribute_definitions=sorted(
            (
                {"AttributeName": a["AttributeName"], "AttributeType": a["AttributeType"]}
                for a in schema["attribute_definitions"]
            ),
            key=lambda a: a["AttributeName"],
        ),
        key_schema=_hash_first(schema["key_schema"]),
        indexes=sorted(indexes, key=lambda index: index.name),
        ttl_attribute=ttl.attr_name if ttl is not None else None,
        stream_view_type=getattr(model.Meta, "stream_view_type", None),
    )


def tags() -> list[dict]:
    configured = sorted(settings.DYNAMODB_TAGS.items())
    return [{"Key": key, "Value": str(value)} for key, value in configured]


def budget(table: str, index: str | None = None) -> Budget:
    """The capacity budget of a table (``index`` None) or of one of its indexes."""
    budgets = settings.DYNAMODB_CAPACITY_BUDGETS
    default = Budget(
        settings.DYNAMODB_CAPACITY_BUDGET_READ, settings.DYNAMODB_CAPACITY_BUDGET_WRITE
    )
    if index is not None and f"{table}.{index}" in budgets:
        return Budget(*budgets[f"{table}.{index}"])
    if index is None and table in budgets:
        return Budget(*budgets[table])
    return default


def create_table_request(model: type[Model], *, protected: bool) -> dict:
    """The CreateTable request of the model; ``protected`` adds KMS encryption, tags and
    deletion protection (point-in-time recovery and TTL are separate calls)."""
    definition = table_definition(model)
    request: dict = {
        "TableName": model.Meta.table_name,
        "AttributeDefinitions": definition.attribute_definitions,
        "KeySchema": definition.key_schema,
        "BillingMode": "PAY_PER_REQUEST",
    }
    if definition.global_indexes:
        request["GlobalSecondaryIndexes"] = [
            {"IndexName": i.name, "KeySchema": i.key_schema, "Projection": i.projection}
            for i in definition.global_indexes
        ]
    if definition.local_indexes:
        request["LocalSecondaryIndexes"] = [
            {"IndexName": i.name, "KeySchema": i.key_schema, "Projection": i.projection}
            for i in definition.local_indexes
        ]
    if definition.stream_view_type:
        request["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": definition.stream_view_type,
        }
    if protected:
        request["SSESpecification"] = sse_specification()
        request["DeletionProtectionEnabled"] = settings.DYNAMODB_DELETION_PROTECTION
        if settings.DYNAMODB_TAGS:
            request["Tags"] = tags()
    return request


def sse_specification() -> dict:
    """Server-side encryption with KMS: the configured key, or DynamoDB's AWS managed key."""
    spec = {"Enabled": True, "SSEType": "KMS"}
    if settings.DYNAMODB_KMS_KEY:
        spec["KMSMasterKeyId"] = settings.DYNAMODB_KMS_KEY
    return spec
