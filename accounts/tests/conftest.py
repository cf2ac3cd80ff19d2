"""The access tests' world (access_world.py: the shared ``world``, extended): built once
per test module that asks for it,
inside a transaction rolled back at the end; each test runs in a savepoint of it. Such a
module also overrides the suite's ``clean_stores`` so that the world's DynamoDB items
stay between its tests; they are deleted here at the end."""

import pytest
from django.core.cache import cache
from django.db import transaction

from .access_world import build_access_world, empty_dynamodb


@pytest.fixture(scope="module")
def access_world(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            yield build_access_world()
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)
            empty_dynamodb()
            cache.clear()
