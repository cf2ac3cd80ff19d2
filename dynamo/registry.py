"""The one place where PynamoDB models get their connection settings.

PynamoDB reads ``Meta`` when a class is created and caches a connection per model, so
models declare only their bare table name; at start-up (and whenever a DYNAMODB_*
setting changes in tests) every registered model gets host, region, credentials,
timeouts and ``prefix + name`` from Django settings, and its cached connection is reset.
"""

from __future__ import annotations

from typing import TypeVar

from django.conf import settings
from django.utils.module_loading import autodiscover_modules
from pynamodb.models import Model

ModelT = TypeVar("ModelT", bound=type[Model])

_models: list[type[Model]] = []


def register(model: ModelT) -> ModelT:
    """Class decorator: every PynamoDB model of the project is registered with it."""
    model.Meta.base_table_name = model.Meta.table_name
    if model not in _models:
        _models.append(model)
    configure(model)
    return model


def models() -> list[type[Model]]:
    return list(_models)


def table_name(base_name: str) -> str:
    return f"{settings.DYNAMODB_TABLE_PREFIX}{base_name}"


def configure(model: type[Model]) -> None:
    if not settings.configured:
        return
    meta = model.Meta
    meta.table_name = table_name(meta.base_table_name)
    meta.host = settings.DYNAMODB_ENDPOINT
    meta.region = settings.DYNAMODB_REGION
    meta.aws_access_key_id = settings.DYNAMODB_ACCESS_KEY
    meta.aws_secret_access_key = settings.DYNAMODB_SECRET_KEY
    meta.connect_timeout_seconds = settings.DYNAMODB_CONNECT_TIMEOUT
    meta.read_timeout_seconds = settings.DYNAMODB_READ_TIMEOUT
    meta.max_retry_attempts = settings.DYNAMODB_MAX_RETRIES
    meta.billing_mode = "PAY_PER_REQUEST"
    model._connection = None


def configure_all() -> None:
    for model in _models:
        configure(model)


def autodiscover() -> None:
    """Import every installed app's ``ddb_models`` module so that its models register."""
    autodiscover_modules("ddb_models")


def on_setting_changed(*, setting: str, **kwargs) -> None:
    if setting.startswith("DYNAMODB_"):
        configure_all()
