"""An API key never reaches a log, an error body, a response header or an audit event:
not on success, not with a bad, revoked or rotated key, not when a request fails
(invalid body, missing scope, the payments store or the database down).

Everything is captured: every logger at DEBUG (including SQL, botocore and loggers that
do not propagate), each record's message, arguments, extras and traceback, and the text
Django's error reporter would mail for it (frame variables included). A real gunicorn
with the production settings and its access log is run as well."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager

import pytest
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.db import connection, connections
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.views.debug import ExceptionReporter

from api import scopes
from api.keys import KEY_BRAND, PREFIX_LENGTH
from api.services import api_client_deactivate, api_client_rotate_key
from audit.models import AuditMessage
from dynamo import registry
from dynamo.tests.faults import inject
from tests.factories import BranchFactory, key_header, make_api_client, make_loan

LOANS = "/api/v1/loans/"
TRANSACTIONS = "/api/v1/transactions"
WRITE = [scopes.TRANSACTIONS_WRITE, scopes.TRANSACTIONS_READ, scopes.LOANS_READ]


def secret_forms(raw_key: str) -> list[str]:
    """The key, the key without its brand, and its secret part (after the public prefix);
    the prefix alone identifies a key and may be logged."""
    unbranded = raw_key.removeprefix(KEY_BRAND)
    return [raw_key, unbranded, unbranded[PREFIX_LENGTH:]]


def assert_absent(keys: list[str], text: str, where: str) -> None:
    for key in keys:
        for form in secret_forms(key):
            assert form not in text, f"an API key appears in {where}"


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: dict[int, logging.LogRecord] = {}

    def emit(self, record):
        self.records[id(record)] = record


@contextmanager
def every_log_record():
    """Every record of every logger at DEBUG, also those that do not propagate."""
    handler = _Collect()
    loggers = [logging.getLogger()] + [
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    saved = [(lg, lg.level, lg.disabled) for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
        lg.disabled = False
        lg.addHandler(handler)
    try:
        yield handler.records
    finally:
        for lg, level, disabled in saved:
            lg.removeHandler(handler)
            lg.setLevel(level)
            lg.disabled = disabled


def record_texts(record: logging.LogRecord):
    """All a handler or formatter could write about a record."""
    yield logging.Formatter("%(name)s %(levelname)s %(message)s").format(record)
    yield repr(vars(record))
    if record.exc_info and record.exc_info[0]:
        reporter = ExceptionReporter(getattr(record, "request", None), *record.exc_info)
        # what AdminEmailHandler mails and DEBUG shows: the HTML has each frame's variables
        yield reporter.get_traceback_text()
        yield reporter.get_traceback_html()


def assert_not_logged(keys: list[str], records) -> None:
    assert records, "no log record was captured"
    for record in records.values():
        for text in record_texts(record):
            assert_absent(keys, text, f"a log record of {record.name!r}")


def assert_not_in_responses(keys: list[str], responses) -> None:
    for response in responses:
        assert_absent(keys, response.content.decode(), f"the body of a {response.status_code}")
        assert_absent(keys, repr(dict(response.headers)), "response headers")


def assert_not_stored(keys: list[str]) -> None:
    """Not in the audit trail (outbox and DynamoDB), the admin log, or any DynamoDB item."""
    outbox = json.dumps(list(AuditMessage.objects.values()), default=str)
    assert_absent(keys, outbox, "the audit outbox")
    admin_log = json.dumps(list(LogEntry.objects.values()), default=str)
    assert_absent(keys, admin_log, "the admin log")
    for model in registry.models():
        items = [item.attribute_values for item in model.scan()]
        assert_absent(keys, json.dumps(items, default=str), f"DynamoDB {model.__name__}")


def _post(client, key, loan, idem, amount="1500.00", **headers):
    body = {"loan_account": loan.loan_number, "amount": amount, "mode": "CASH"}
    return client.post(
        TRANSACTIONS,
        data=json.dumps(body),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=idem,
        **headers,
    )


@pytest.mark.django_db
def test_no_api_key_in_logs_bodies_or_stores_across_success_and_failure(client):
    branch = BranchFactory()
    loan = make_loan(branch=branch)
    api_client, key = make_api_client(scopes=WRITE, branches=[branch])
    _, read_only_key = make_api_client(scopes=[scopes.LOANS_READ], branches=[branch])
    keys = [key, read_only_key]
    responses = []

    def expect(status, response):
        assert response.status_code == status, response.content
        responses.append(response)
        return response

    # SQL is logged only while queries are captured
    with every_log_record() as records, CaptureQueriesContext(connection):
        created = expect(201, _post(client, key, loan, "idem-log-0001", **key_header(key)))
        expect(201, _post(client, key, loan, "idem-log-0002", HTTP_X_API_KEY=key))
        expect(200, client.get(LOANS, **key_header(key)))
        expect(200, client.get(f"{TRANSACTIONS}/{created.json()['txn_id']}", **key_header(key)))
        # bad keys: unknown, one character changed, malformed header
        expect(401, client.get(LOANS, **key_header(key + "x")))
        expect(401, client.get(LOANS, **key_header(key[:-1] + ("A" if key[-1] != "A" else "B"))))
        expect(401, client.get(LOANS, HTTP_AUTHORIZATION=f"Api-Key {key} extra"))
        expect(401, client.get(LOANS, HTTP_X_API_KEY=f"{key} {key}"))
        # failing requests: missing scope, invalid body, the payments store unavailable
        refused = _post(client, read_only_key, loan, "idem-log-0003", **key_header(read_only_key))
        expect(403, refused)
        expect(400, _post(client, key, loan, "idem-log-0004", amount="-1", **key_header(key)))
        with inject("TransactWriteItems", "throttling", times=100):
            expect(503, _post(client, key, loan, "idem-log-0005", **key_header(key)))
        # rotated: the old key is refused; revoked: the new one is refused too
        rotated = api_client_rotate_key(client_id=api_client.pk, actor=None)
        keys.append(rotated)
        expect(401, client.get(LOANS, **key_header(key)))
        expect(200, client.get(LOANS, **key_header(rotated)))
        api_client_deactivate(client_id=api_client.pk, actor=None)
        expect(401, client.get(LOANS, **key_header(rotated)))

    names = {record.name for record in records.values()}
    assert {"django.db.backends", "django.request", "api.services"} <= names  # all captured
    assert_not_logged(keys, records)
    assert_not_in_responses(keys, responses)
    assert_not_stored(keys)


@pytest.mark.django_db(transaction=True)
def test_no_api_key_in_the_report_of_a_server_error_during_authentication():
    """The database fails while the key is being checked (its table is locked): a 500,
    logged with its traceback, whose frames hold the key; the report must not show it."""
    _, key = make_api_client(branches=[BranchFactory()])
    locker = connections.create_connection("default")
    locker.set_autocommit(False)
    try:
        with locker.cursor() as cursor:
            cursor.execute("LOCK TABLE api_apiclient IN ACCESS EXCLUSIVE MODE")
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '200ms'")
        with every_log_record() as records:
            response = Client().get(LOANS, **key_header(key))
    finally:
        locker.rollback()
        locker.close()
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")

    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    errors = [r for r in records.values() if r.exc_info and r.exc_info[0]]
    assert errors, "the server error was not logged with its traceback"
    assert_not_logged([key], records)
    assert_not_in_responses([key], [response])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _call(url, method="GET", headers=None, body=None) -> int:
    assert url.startswith("http://127.0.0.1:")
    request = urllib.request.Request(url, method=method, headers=headers or {}, data=body)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.django_db(transaction=True)
def test_no_api_key_in_gunicorn_access_and_error_logs(tmp_path):
    """bin/run's web server, with the production settings at LOG_LEVEL=DEBUG."""
    branch = BranchFactory()
    loan = make_loan(branch=branch)
    api_client, key = make_api_client(scopes=WRITE, branches=[branch])
    db = connection.settings_dict
    port = _free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "gunicorn-log-test-" + "k" * 40,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "DATABASE_POOL": "0",
        "REDIS_URL": settings.REDIS_URL,
        # the run's cache keys, as the processes of one deployment share them (a client's
        # revocation is announced there)
        "CACHE_KEY_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
        "DYNAMODB_ENDPOINT": settings.DYNAMODB_ENDPOINT or "",
        "DYNAMODB_TABLE_PREFIX": settings.DYNAMODB_TABLE_PREFIX,
        "LOG_LEVEL": "DEBUG",
    }
    access_log, error_log, output = (tmp_path / n for n in ("access.log", "web.log", "out.log"))
    with output.open("w") as out:
        server = subprocess.Popen(
            [
                *(sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}"),
                *("--workers", "1", "--access-logfile", str(access_log)),
                *("--error-logfile", str(error_log), "--log-level", "debug"),
            ],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while _call_quietly(f"{base}/health/live") != 200:
            assert server.poll() is None, output.read_text()
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.3)
        auth = {"Authorization": f"Api-Key {key}"}
        payment = json.dumps(
            {"loan_account": loan.loan_number, "amount": "900.00", "mode": "CASH"}
        ).encode()
        post = {**auth, "Content-Type": "application/json", "Idempotency-Key": "idem-gunicorn-1"}
        assert _call(f"{base}{TRANSACTIONS}", "POST", post, payment) == 201
        assert _call(f"{base}{LOANS}", headers=auth) == 200
        assert _call(f"{base}{LOANS}", headers={"X-Api-Key": key + "x"}) == 401
        bad_body = {**post, "Idempotency-Key": "idem-gunicorn-2"}
        assert _call(f"{base}{TRANSACTIONS}", "POST", bad_body, b"{not json") == 400
        api_client_deactivate(client_id=api_client.pk, actor=None)
        assert _call(f"{base}{LOANS}", headers=auth) == 401
    finally:
        server.terminate()
        server.wait(timeout=30)

    access = access_log.read_text()
    assert access.count("/api/v1/") == 5  # every request was logged
    everything = access + error_log.read_text() + output.read_text()
    assert_absent([key], everything, "gunicorn's logs")


def _call_quietly(url: str) -> int | None:
    try:
        return _call(url)
    except OSError:
        return None
