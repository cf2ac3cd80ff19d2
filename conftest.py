"""Suite-wide fixtures: real DynamoDB Local tables under a per-run prefix, emptied between
tests (the tables a test wrote), and the test database flushed by deleting rows; see
tests/stores.py."""

import pytest
from django.core.cache import cache

from dynamo import tables
from tests.stores import EVERY_TABLE, DynamoWrites, empty_written, sql_flush_by_delete

pytest_plugins = ["tests.world"]

dynamo_writes = DynamoWrites()


@pytest.fixture(scope="session", autouse=True)
def dynamodb_tables():
    tables.ensure_all()
    with dynamo_writes.watching():
        dynamo_writes.note({EVERY_TABLE})  # a run stopped midway leaves its items behind
        empty_written(dynamo_writes)
        yield
        tables.delete_all()


@pytest.fixture(scope="session", autouse=True)
def flush_by_delete():
    from django.db.backends.postgresql.operations import DatabaseOperations

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            DatabaseOperations, "sql_flush", sql_flush_by_delete(DatabaseOperations.sql_flush)
        )
        yield


@pytest.fixture(autouse=True)
def clean_stores():
    yield
    empty_written(dynamo_writes)
    cache.clear()


CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser():
    """Headless Debian Chromium driven by Playwright (never a downloaded browser)."""
    import os
    import shutil

    from django.db import connections
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls
    # between browser steps are still plain synchronous calls.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=shutil.which("chromium"), args=CHROMIUM_FLAGS
        )
        yield chromium
        chromium.close()
        # Under Playwright's sync API the test's own ORM calls get database connections of
        # their own (Django keeps connections per context): closed here, or the test
        # database could not be dropped at the end of the run.
        connections.close_all()
    del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@pytest.fixture
def page(browser):
    page = browser.new_page()
    page.set_default_timeout(15_000)
    return page
