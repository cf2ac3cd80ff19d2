"""config.wsgi: an API-key request runs without the browser's middleware; every other
request, through the same WSGI application, keeps all of it (the CSRF check included)."""

import io
import json
import sys

import pytest
from django.core.handlers.base import BaseHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from api import scopes
from config import wsgi
from payments.ddb_models import TransactionItem
from tests.factories import UserFactory, make_api_client, make_loan

pytestmark = pytest.mark.django_db


def _call(path, *, method="GET", body=b"", content_type="application/json", **headers):
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "testserver",
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body)),
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        **{f"HTTP_{name.upper()}": value for name, value in headers.items()},
    }
    answer = {}

    def start_response(status, response_headers, exc_info=None):
        answer["status"] = int(status.split()[0])
        answer["headers"] = dict(response_headers)

    # as Django's test client does: the test's transaction keeps its connection
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        answer["body"] = b"".join(wsgi.application(environ, start_response))
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return answer


def test_api_key_requests_are_told_apart_by_path_and_header():
    key = {"PATH_INFO": "/api/v1/transactions", "HTTP_AUTHORIZATION": "Api-Key bo_live_x"}
    assert wsgi.presents_api_key(key)
    assert wsgi.presents_api_key({"PATH_INFO": "/api/v1/loans/", "HTTP_X_API_KEY": "k"})
    assert not wsgi.presents_api_key({**key, "PATH_INFO": "/admin/"})
    assert not wsgi.presents_api_key({"PATH_INFO": "/api/v1/loans/"})  # a session user
    assert not wsgi.presents_api_key({**key, "HTTP_AUTHORIZATION": "Bearer x"})


def test_the_api_key_handler_runs_without_the_browsers_middleware():
    names = {type(mw).__name__ for mw in _chain(wsgi.api_key_application)}
    assert not names & {"SessionMiddleware", "CsrfViewMiddleware", "MessageMiddleware"}
    assert {"SecurityMiddleware", "RequestContextMiddleware", "CSPMiddleware"} <= names
    browser = {type(mw).__name__ for mw in _chain(wsgi.browser_application)}
    assert {"SessionMiddleware", "CsrfViewMiddleware", "AuthenticationMiddleware"} <= browser


def _chain(handler):
    """The middleware instances of a handler's chain, outermost first."""
    found, step = [], handler._middleware_chain
    for _ in range(100):
        step = getattr(step, "__wrapped__", step)  # Django's exception wrapper
        instance = getattr(step, "__self__", step)
        if isinstance(instance, BaseHandler):  # the view, past the last middleware
            return found
        found.append(instance)
        step = instance.get_response
    raise AssertionError("no end to the middleware chain")


def test_a_payment_with_an_api_key_is_accepted_with_the_security_headers():
    loan = make_loan()
    _, raw_key = make_api_client(scopes=[scopes.TRANSACTIONS_WRITE], branches=[loan.branch])
    body = json.dumps({"loan_account": loan.loan_number, "amount": "12.00", "mode": "UPI"})
    answer = _call(
        "/api/v1/transactions",
        method="POST",
        body=body.encode(),
        AUTHORIZATION=f"Api-Key {raw_key}",
        IDEMPOTENCY_KEY="wsgi-test-key-1",
    )
    assert answer["status"] == 201, answer["body"]
    assert TransactionItem.count() == 1
    assert answer["headers"]["X-Frame-Options"] == "DENY"
    assert "Content-Security-Policy" in answer["headers"]
    assert "Set-Cookie" not in answer["headers"]


def test_a_wrong_api_key_is_a_401_not_a_session_fallback():
    answer = _call("/api/v1/loans/", AUTHORIZATION="Api-Key bo_live_" + "x" * 43)
    assert answer["status"] == 401
    assert json.loads(answer["body"])["error"]["code"] == "not_authenticated"


def test_a_browser_post_without_its_csrf_token_is_still_refused():
    UserFactory(username="clerk")
    answer = _call(
        "/admin/login/",
        method="POST",
        body=b"username=clerk&password=x",
        content_type="application/x-www-form-urlencoded",
    )
    assert answer["status"] == 403
