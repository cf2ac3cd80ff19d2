"""The CloudFormation template of every DynamoDB table, generated from the models
(``dynamo.definition``): ``manage.py ddb_tables template [--out FILE]``.

Each table: its keys, global and local secondary indexes, TTL, stream (when the model
declares one), on-demand billing, point-in-time recovery, KMS encryption, tags, deletion
protection, and ``Retain`` as its deletion and replacement policy (a stack update never
drops a table with its data). CloudWatch alarms per table: throttled requests, system
errors, consumed read and write capacity above 80% of the budget; per global index:
throttled requests and consumed capacity. Parameters: the table prefix, the KMS key and
the SNS topic the alarms notify (defaults from the settings). docs/aws.md has the details.
"""

from __future__ import annotations

import json

import yaml
from django.conf import settings
from pynamodb.models import Model

from . import definition, registry
from .definition import TableDefinition

ALARM_SHARE = 0.8  # of the budget
PERIOD = 60  # seconds; CloudWatch's DynamoDB metrics are per minute
EVALUATION_PERIODS = 5  # five minutes in a row: a short burst is what on-demand absorbs
# The operations the application calls (SystemErrors is reported per operation).
OPERATIONS = (
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "BatchWriteItem",
    "TransactWriteItems",
)
NO_VALUE = {"Ref": "AWS::NoValue"}


def logical_id(*parts: str) -> str:
    """``("transactions", "branch_day", "Throttles")`` -> ``TransactionsBranchDayThrottles``."""
    words = [word for part in parts for word in part.replace("-", "_").split("_") if word]
    return "".join(word[:1].upper() + word[1:] for word in words)


def template(models: list[type[Model]] | None = None) -> dict:
    """The whole template of ``models`` (default: every registered one), as a dict ready
    for JSON or YAML."""
    resources: dict = {}
    outputs: dict = {}
    for model in registry.models() if models is None else models:
        table = definition.table_definition(model)
        table_id = logical_id(table.base_name, "Table")
        resources[table_id] = _table(table)
        resources.update(_alarms(table, table_id))
        outputs[logical_id(table.base_name, "TableName")] = {
            "Description": f"the {table.base_name} table",
            "Value": {"Ref": table_id},
        }
        if table.stream_view_type:
            outputs[logical_id(table.base_name, "StreamArn")] = {
                "Description": f"the stream of the {table.base_name} table",
                "Value": {"Fn::GetAtt": [table_id, "StreamArn"]},
            }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": (
            "DynamoDB tables of the payments back-office, generated from its PynamoDB models "
            "by `manage.py ddb_tables template`: do not edit, regenerate."
        ),
        "Parameters": {
            "TablePrefix": {
                "Type": "String",
                "Default": settings.DYNAMODB_TABLE_PREFIX,
                "AllowedPattern": "[A-Za-z0-9_.-]*",
                "Description": "prefix of every table name (DYNAMODB_TABLE_PREFIX)",
            },
            "KmsKey": {
                "Type": "String",
                "Default": settings.DYNAMODB_KMS_KEY,
                "Description": "KMS key id, ARN or alias for the tables' encryption; empty: "
                "DynamoDB's AWS managed key (DYNAMODB_KMS_KEY)",
            },
            "AlarmTopicArn": {
                "Type": "String",
                "Default": settings.DYNAMODB_ALARM_TOPIC_ARN,
                "Description": "SNS topic the alarms notify; empty: none "
                "(DYNAMODB_ALARM_TOPIC_ARN)",
            },
        },
        "Conditions": {
            "HasKmsKey": {"Fn::Not": [{"Fn::Equals": [{"Ref": "KmsKey"}, ""]}]},
            "HasAlarmTopic": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]},
        },
        "Resources": resources,
        "Outputs": outputs,
    }


def _index(index) -> dict:
    return {"IndexName": index.name, "KeySchema": index.key_schema, "Projection": index.projection}


def _table(table: TableDefinition) -> dict:
    properties: dict = {
        "TableName": {"Fn::Sub": f"${{TablePrefix}}{table.base_name}"},
        "AttributeDefinitions": table.attribute_definitions,
        "KeySchema": table.key_schema,
        "BillingMode": "PAY_PER_REQUEST",
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "SSESpecification": {
            "SSEEnabled": True,
            "SSEType": "KMS",
            "KMSMasterKeyId": {"Fn::If": ["HasKmsKey", {"Ref": "KmsKey"}, NO_VALUE]},
        },
        "DeletionProtectionEnabled": settings.DYNAMODB_DELETION_PROTECTION,
    }
    if table.global_indexes:
        properties["GlobalSecondaryIndexes"] = [_index(i) for i in table.global_indexes]
    if table.local_indexes:
        properties["LocalSecondaryIndexes"] = [_index(i) for i in table.local_indexes]
    if table.ttl_attribute:
        properties["TimeToLiveSpecification"] = {
            "AttributeName": table.ttl_attribute,
            "Enabled": True,
        }
    if table.stream_view_type:
        properties["StreamSpecification"] = {"StreamViewType": table.stream_view_type}
    if settings.DYNAMODB_TAGS:
        properties["Tags"] = definition.tags()
    return {
        "Type": "AWS::DynamoDB::Table",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": properties,
    }


def _alarm(description: str, threshold: float, **metric) -> dict:
    topic = [{"Fn::If": ["HasAlarmTopic", {"Ref": "AlarmTopicArn"}, NO_VALUE]}]
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmDescription": description,
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": threshold,
            "EvaluationPeriods": EVALUATION_PERIODS,
            "DatapointsToAlarm": EVALUATION_PERIODS,
            "TreatMissingData": "notBreaching",
            "AlarmActions": topic,
            "OKActions": topic,
            **metric,
        },
    }


def _dimensions(table_id: str, index: str | None) -> list[dict]:
    dimensions = [{"Name": "TableName", "Value": {"Ref": table_id}}]
    if index is not None:
        dimensions.append({"Name": "GlobalSecondaryIndexName", "Value": index})
    return dimensions


def _sum_of(label: str, metrics: list[tuple[str, list[dict]]]) -> dict:
    """A metric math alarm on the sum of ``metrics`` (name, dimensions), a missing
    minute counting as 0."""
    queries = [
        {
            "Id": f"m{n}",
            "ReturnData": False,
            "MetricStat": {
                "Metric": {"Namespace": "AWS/DynamoDB", "MetricName": name, "Dimensions": dims},
                "Period": PERIOD,
                "Stat": "Sum",
            },
        }
        for n, (name, dims) in enumerate(metrics)
    ]
    expression = " + ".join(f"FILL(m{n}, 0)" for n in range(len(metrics)))
    return {
        "Metrics": [
            *queries,
            {"Id": "total", "Expression": expression, "Label": label, "ReturnData": True},
        ]
    }


def _alarms(table: TableDefinition, table_id: str) -> dict:
    alarms: dict = {}
    name = table.base_name
    for index in [None, *(i.name for i in table.global_indexes)]:
        what = f"{name} table" if index is None else f"index {index} of the {name} table"
        dims = _dimensions(table_id, index)
        alarms[logical_id(name, index or "", "ThrottlesAlarm")] = _alarm(
            f"Requests to the {what} are throttled (read or write throttle events, "
            f"{EVALUATION_PERIODS} minutes in a row)",
            0,
            **_sum_of(
                "throttle events", [("ReadThrottleEvents", dims), ("WriteThrottleEvents", dims)]
            ),
        )
        limits = definition.budget(name, index)
        for kind, metric, units in (
            ("Read", "ConsumedReadCapacityUnits", limits.read),
            ("Write", "ConsumedWriteCapacityUnits", limits.write),
        ):
            if units <= 0:  # no budget: no alarm (e.g. an index that is never written)
                continue
            alarms[logical_id(name, index or "", f"{kind}CapacityAlarm")] = _alarm(
                f"The {what} consumes more than {ALARM_SHARE:.0%} of its {kind.lower()} "
                f"budget of {units} units a second (DYNAMODB_CAPACITY_BUDGETS)",
                round(units * PERIOD * ALARM_SHARE, 2),
                Namespace="AWS/DynamoDB",
                MetricName=metric,
                Dimensions=dims,
                Statistic="Sum",
                Period=PERIOD,
            )
    table_dims = _dimensions(table_id, None)
    alarms[logical_id(name, "SystemErrorsAlarm")] = _alarm(
        f"DynamoDB answers requests to the {name} table with system errors (HTTP 500)",
        0,
        **_sum_of(
            "system errors",
            [
                ("SystemErrors", [*table_dims, {"Name": "Operation", "Value": op}])
                for op in OPERATIONS
            ],
        ),
    )
    return alarms


class _Dumper(yaml.SafeDumper):
    """No anchors and aliases for repeated values: CloudFormation rejects YAML aliases."""

    def ignore_aliases(self, data) -> bool:
        return True


def render(data: dict, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100)


def models_missing_from(data: dict) -> list[str]:
    """What the registry's models declare but a template lacks: ``table`` or
    ``table.index``; empty when the template has every table and index."""
    declared = {
        table.get("Properties", {}).get("TableName", {}).get("Fn::Sub", ""): table
        for table in data.get("Resources", {}).values()
        if table.get("Type") == "AWS::DynamoDB::Table"
    }
    missing = []
    for model in registry.models():
        wanted = definition.table_definition(model)
        found = declared.get(f"${{TablePrefix}}{wanted.base_name}")
        if found is None:
            missing.append(wanted.base_name)
            continue
        properties = found["Properties"]
        present = {
            i["IndexName"]
            for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes")
            for i in properties.get(kind, [])
        }
        missing += [f"{wanted.base_name}.{i.name}" for i in wanted.indexes if i.name not in present]
    return missing
