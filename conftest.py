"""Suite-wide fixtures: real DynamoDB Local tables under a per-run prefix, emptied between tests."""

import pytest
from django.core.cache import cache

from dynamo import registry, tables


@pytest.fixture(scope="session", autouse=True)
def dynamodb_tables():
    tables.ensure_all()
    yield
    tables.delete_all()


def _empty(model) -> None:
    key_names = [
        name
        for name, attr in model.get_attributes().items()
        if attr.is_hash_key or attr.is_range_key
    ]
    with model.batch_write() as batch:
        for item in model.scan(attributes_to_get=key_names):
            batch.delete(item)


@pytest.fixture(autouse=True)
def clean_stores():
    yield
    for model in registry.models():
        _empty(model)
    cache.clear()
