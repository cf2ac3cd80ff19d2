"""The CloudFormation template generated from the models, and `ddb_tables create` with the
protection AWS has (point-in-time recovery, KMS encryption, tags, deletion protection)."""

import json
import uuid

import pytest
import yaml
from cfnlint.api import lint
from django.core.management import CommandError, call_command
from django.test import override_settings
from pynamodb.attributes import TTLAttribute, UnicodeAttribute
from pynamodb.indexes import IncludeProjection, LocalSecondaryIndex
from pynamodb.models import Model

from dynamo import definition, registry, tables
from dynamo import template as cfn
from dynamo.connection import boto3_client


def _resources(data: dict, kind: str) -> dict:
    return {k: v for k, v in data["Resources"].items() if v["Type"] == kind}


def _lint(text: str) -> list[str]:
    return [str(match) for match in lint(text, regions=["ap-south-1"])]


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_template_passes_cfn_lint(fmt, tmp_path):
    out = tmp_path / f"tables.{fmt}"
    call_command("ddb_tables", "template", "--out", str(out))
    text = out.read_text()
    assert (json.loads(text) if fmt == "json" else yaml.safe_load(text))["Resources"]
    assert _lint(text) == []


def test_cfn_lint_catches_a_broken_template():
    """The lint of the previous test is a real check: a wrong property fails it."""
    data = cfn.template()
    table = next(iter(_resources(data, "AWS::DynamoDB::Table").values()))
    table["Properties"]["BillingMode"] = "FREE"
    assert _lint(cfn.render(data, "json"))


def test_template_has_every_table_and_index_of_the_models():
    data = cfn.template()
    assert cfn.models_missing_from(data) == []
    tables_ = _resources(data, "AWS::DynamoDB::Table")
    assert len(tables_) == len(registry.models())
    for model in registry.models():
        wanted = definition.table_definition(model)
        assert wanted.key_schema[0]["KeyType"] == "HASH"
        found = data["Resources"][cfn.logical_id(wanted.base_name, "Table")]["Properties"]
        assert found["KeySchema"] == wanted.key_schema
        names = {i["IndexName"] for i in found.get("GlobalSecondaryIndexes", [])}
        assert names == {index.Meta.index_name for index in model._indexes.values()}


def test_a_model_index_missing_from_the_template_is_reported():
    data = cfn.template()
    properties = data["Resources"]["TransactionsTable"]["Properties"]
    properties["GlobalSecondaryIndexes"] = [
        i for i in properties["GlobalSecondaryIndexes"] if i["IndexName"] != "branch_day"
    ]
    del data["Resources"]["SessionsTable"]
    assert cfn.models_missing_from(data) == ["sessions", "transactions.branch_day"]


def test_every_table_has_pitr_kms_tags_on_demand_and_deletion_protection(settings):
    settings.DYNAMODB_KMS_KEY = "alias/backoffice-dynamodb"
    settings.DYNAMODB_TAGS = {"application": "backoffice", "env": "prod"}
    data = cfn.template()
    assert data["Parameters"]["KmsKey"]["Default"] == "alias/backoffice-dynamodb"
    for table in _resources(data, "AWS::DynamoDB::Table").values():
        props = table["Properties"]
        assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["SSESpecification"]["SSEType"] == "KMS"
        assert props["SSESpecification"]["KMSMasterKeyId"]["Fn::If"][1] == {"Ref": "KmsKey"}
        assert props["DeletionProtectionEnabled"] is True
        assert props["Tags"] == [
            {"Key": "application", "Value": "backoffice"},
            {"Key": "env", "Value": "prod"},
        ]
        assert props["TableName"]["Fn::Sub"].startswith("${TablePrefix}")
    sessions = data["Resources"]["SessionsTable"]["Properties"]
    assert sessions["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert "TimeToLiveSpecification" not in data["Resources"]["TransactionsTable"]["Properties"]


class _StreamedItem(Model):
    """Not registered: a model with a stream and a local index, as the template sees it."""

    class Meta:
        table_name = base_table_name = "streamed"
        stream_view_type = "NEW_IMAGE"

    class ByStatus(LocalSecondaryIndex):
        class Meta:
            index_name = "by_status"
            projection = IncludeProjection(["amount"])

        pk = UnicodeAttribute(hash_key=True)
        status = UnicodeAttribute(range_key=True)

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    status = UnicodeAttribute()
    expires_at = TTLAttribute(null=True)
    by_status = ByStatus()


def test_a_model_with_a_stream_and_a_local_index_gets_them_in_the_template():
    data = cfn.template([_StreamedItem])
    props = data["Resources"]["StreamedTable"]["Properties"]
    assert props["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    assert props["LocalSecondaryIndexes"] == [
        {
            "IndexName": "by_status",
            "KeySchema": [
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "status", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["amount"]},
        }
    ]
    assert data["Outputs"]["StreamedStreamArn"]["Value"] == {
        "Fn::GetAtt": ["StreamedTable", "StreamArn"]
    }
    assert _lint(cfn.render(data, "yaml")) == []
    request = definition.create_table_request(_StreamedItem, protected=False)
    assert request["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}


def test_alarms_for_throttles_errors_and_capacity_over_80_percent_of_the_budget(settings):
    settings.DYNAMODB_CAPACITY_BUDGET_READ = 100
    settings.DYNAMODB_CAPACITY_BUDGET_WRITE = 50
    settings.DYNAMODB_CAPACITY_BUDGETS = {
        "transactions": (4000, 2000),
        "transactions.branch_day": (800, 0),
    }
    resources = cfn.template()["Resources"]
    alarms = _resources({"Resources": resources}, "AWS::CloudWatch::Alarm")
    for model in registry.models():
        table = definition.table_definition(model)
        for index in [None, *(i.name for i in table.global_indexes)]:
            assert cfn.logical_id(table.base_name, index or "", "ThrottlesAlarm") in alarms
        assert cfn.logical_id(table.base_name, "SystemErrorsAlarm") in alarms
    assert alarms["TransactionsReadCapacityAlarm"]["Properties"]["Threshold"] == 4000 * 60 * 0.8
    assert alarms["TransactionsWriteCapacityAlarm"]["Properties"]["Threshold"] == 2000 * 60 * 0.8
    branch_day = alarms["TransactionsBranchDayReadCapacityAlarm"]["Properties"]
    assert branch_day["Threshold"] == 800 * 60 * 0.8
    assert {"Name": "GlobalSecondaryIndexName", "Value": "branch_day"} in branch_day["Dimensions"]
    assert "TransactionsBranchDayWriteCapacityAlarm" not in alarms  # a budget of 0: no alarm
    assert alarms["SessionsReadCapacityAlarm"]["Properties"]["Threshold"] == 100 * 60 * 0.8
    assert alarms["SessionsUserIdWriteCapacityAlarm"]["Properties"]["Threshold"] == 50 * 60 * 0.8
    errors = alarms["TransactionsSystemErrorsAlarm"]["Properties"]["Metrics"]
    operations = {
        d["Value"]
        for m in errors
        if "MetricStat" in m
        for d in m["MetricStat"]["Metric"]["Dimensions"]
        if d["Name"] == "Operation"
    }
    assert operations == set(cfn.OPERATIONS)


def test_template_to_an_unwritable_file_is_one_line(tmp_path):
    with pytest.raises(CommandError, match="cannot write"):
        call_command("ddb_tables", "template", "--out", str(tmp_path / "no" / "such" / "t.yaml"))


# --- create against AWS: protection ----------------------------------------------------------


class _WithRecovery:
    """DynamoDB Local has no point-in-time recovery and no tagging API
    (UnknownOperationException): the real Local client, with AWS's continuous-backup and
    TagResource calls answered by this stand-in."""

    def __init__(self, client):
        self._client = client
        self.recovery: dict[str, bool] = {}
        self.tags: dict[str, list] = {}

    def tag_resource(self, *, ResourceArn, Tags):
        self.tags[ResourceArn.rsplit("/", 1)[-1]] = Tags

    def describe_continuous_backups(self, *, TableName):
        status = "ENABLED" if self.recovery.get(TableName) else "DISABLED"
        return {
            "ContinuousBackupsDescription": {
                "ContinuousBackupsStatus": "ENABLED",
                "PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": status},
            }
        }

    def update_continuous_backups(self, *, TableName, PointInTimeRecoverySpecification):
        self.recovery[TableName] = PointInTimeRecoverySpecification["PointInTimeRecoveryEnabled"]

    def __getattr__(self, name):
        return getattr(self._client, name)


@pytest.fixture
def protected_prefix():
    prefix = f"p{uuid.uuid4().hex[:8]}_"
    with override_settings(
        DYNAMODB_TABLE_PREFIX=prefix,
        DYNAMODB_TABLE_PROTECTION=True,
        DYNAMODB_KMS_KEY="alias/backoffice",
        DYNAMODB_TAGS={"application": "backoffice"},
    ):
        yield prefix
        client = boto3_client()
        for model in registry.models():
            if model.exists():
                client.update_table(
                    TableName=model.Meta.table_name, DeletionProtectionEnabled=False
                )
        tables.delete_all()


def test_create_against_aws_sets_recovery_encryption_and_deletion_protection(protected_prefix):
    from sessions_ddb.ddb_models import SessionItem

    client = _WithRecovery(boto3_client())
    report = tables.ensure_table(SessionItem, client=client)
    name = f"{protected_prefix}sessions"
    assert report.action == "created"
    assert client.recovery == {name: True}
    described = client.describe_table(TableName=name)["Table"]
    assert described["DeletionProtectionEnabled"] is True
    assert client.tags == {name: [{"Key": "application", "Value": "backoffice"}]}
    again = tables.ensure_table(SessionItem, client=client)
    assert again.action in {"exists", "updated"}
    assert client.recovery == {name: True}
    # deletion protection holds: delete reports the table kept, one line, no traceback
    call_command("ddb_tables", "delete", "--yes")
    assert SessionItem.exists()


def test_create_turns_recovery_on_for_an_existing_unprotected_table(protected_prefix):
    from sessions_ddb.ddb_models import SessionItem

    with override_settings(DYNAMODB_TABLE_PROTECTION=False):
        assert tables.ensure_table(SessionItem).action == "created"
    name = f"{protected_prefix}sessions"
    assert (
        not boto3_client().describe_table(TableName=name)["Table"].get("DeletionProtectionEnabled")
    )
    client = _WithRecovery(boto3_client())
    report = tables.ensure_table(SessionItem, client=client)
    assert report.action == "updated"
    assert "point-in-time recovery enabled" in report.detail
    assert "deletion protection on" in report.detail
    assert client.recovery == {name: True}
    assert client.describe_table(TableName=name)["Table"]["DeletionProtectionEnabled"] is True


def test_create_request_without_protection_is_what_dynamodb_local_gets(settings):
    from payments.ddb_models import TransactionItem

    request = definition.create_table_request(TransactionItem, protected=False)
    assert "SSESpecification" not in request
    assert "DeletionProtectionEnabled" not in request
    protected = definition.create_table_request(TransactionItem, protected=True)
    assert protected["SSESpecification"] == {
        "Enabled": True,
        "SSEType": "KMS",
        **({"KMSMasterKeyId": settings.DYNAMODB_KMS_KEY} if settings.DYNAMODB_KMS_KEY else {}),
    }
