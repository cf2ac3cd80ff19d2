"""Suite-wide fixtures: real DynamoDB Local tables under a per-run prefix, emptied between tests."""

import pytest
from django.core.cache import cache

from dynamo import registry, tables

pytest_plugins = ["tests.world"]


@pytest.fixture(scope="session", autouse=True)
def dynamodb_tables():
    tables.ensure_all()
    for model in registry.models():  # a run stopped midway leaves its items behind
        _empty(model)
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
