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


class Chromium:
    """One headless Debian Chromium (never a downloaded browser) driven by Playwright, for
    every browser test of the run (a launch per test cost a second or more of each).

    Playwright's sync API runs an event loop in this thread while it is started, where
    Django refuses synchronous ORM calls unless DJANGO_ALLOW_ASYNC_UNSAFE is set: it is
    started by the first test that asks for ``browser`` and stopped before any test that
    does not (the browser tests run last, see ``pytest_collection_modifyitems``)."""

    def __init__(self) -> None:
        self._playwright = None
        self.browser = None
        self.keep = False  # whether the next test uses it too

    def start(self):
        if self.browser is None:
            import os
            import shutil

            from playwright.sync_api import sync_playwright

            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
            self._playwright = sync_playwright().start()
            self.browser = self._playwright.chromium.launch(
                executable_path=shutil.which("chromium"), args=CHROMIUM_FLAGS
            )
        return self.browser

    def stop(self) -> None:
        import os

        if self.browser is None:
            return
        self.browser.close()
        self._playwright.stop()
        self.browser = self._playwright = None
        _close_connections()
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


def _close_connections() -> None:
    # Under Playwright's sync API the test's own ORM calls get database connections of
    # their own (Django keeps connections per context): closed after each browser test,
    # or the test database could not be dropped at the end of the run.
    from django.db import connections

    connections.close_all()


chromium = Chromium()


def _uses_browser(item) -> bool:
    return "browser" in getattr(item, "fixturenames", ())


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    """The browser tests last (after pytest-django's ordering, which they keep among
    themselves): one Chromium serves them all."""
    items.sort(key=_uses_browser)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    chromium.keep = nextitem is not None and _uses_browser(nextitem)


def pytest_runtest_setup(item):
    if not _uses_browser(item):
        chromium.stop()


def pytest_sessionfinish(session):
    chromium.stop()


@pytest.fixture
def browser():
    """The run's Chromium; the contexts (and pages) a test opened are closed after it."""
    browser = chromium.start()
    yield browser
    for context in browser.contexts:
        context.close()
    _close_connections()
    if not chromium.keep:  # the last browser test: stopped before the database's teardown
        chromium.stop()


@pytest.fixture
def page(browser):
    page = browser.new_page()
    page.set_default_timeout(15_000)
    return page
