"""Every API error is the JSON envelope {"error": {"code", "message", "fields"?}}."""

import logging

import pytest
from django.test import Client

from tests.factories import key_header, make_api_client

pytestmark = [pytest.mark.django_db, pytest.mark.urls("api.tests.urls")]


def _error(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]


@pytest.fixture
def api():
    _, raw_key = make_api_client()
    return Client(**key_header(raw_key))


def test_invalid_input_is_400_with_the_messages_of_each_field(api):
    response = api.post(
        "/api/test/echo",
        {"amount": "abc", "items": [{"amount": "1.00"}, {"amount": "x"}]},
        content_type="application/json",
    )
    error = _error(response, 400, "invalid")
    assert set(error["fields"]) == {"amount", "items.1.amount"}
    assert all(isinstance(m, str) for m in error["fields"]["amount"])


def test_an_error_about_the_whole_request_is_its_message(api):
    response = api.post("/api/test/echo", {"amount": "-1"}, content_type="application/json")
    error = _error(response, 400, "invalid")
    assert error["message"] == "The amount cannot be negative."
    assert error["fields"] == {"non_field_errors": ["The amount cannot be negative."]}


def test_malformed_json_is_400(api):
    response = api.post("/api/test/echo", '{"amount": ', content_type="application/json")
    assert "fields" not in _error(response, 400, "malformed_json")


def test_an_unsupported_media_type_is_415(api):
    response = api.post(
        "/api/test/echo", "amount=1", content_type="application/x-www-form-urlencoded"
    )
    _error(response, 415, "unsupported_media_type")


def test_not_authenticated_is_401(client):
    _error(
        client.post("/api/test/echo", {}, content_type="application/json"), 401, "not_authenticated"
    )


def test_permission_denied_is_403(client):
    _, raw_key = make_api_client(scopes=[])
    _error(client.get("/api/v1/loans/", **key_header(raw_key)), 403, "permission_denied")


def test_not_found_is_404(api):
    _error(api.get("/api/test/missing"), 404, "not_found")
    _error(api.get("/api/v1/loans/LN9999999999"), 404, "not_found")


def test_a_wrong_method_is_405(api):
    _error(api.delete("/api/v1/loans/"), 405, "method_not_allowed")


def test_throttled_is_429_with_retry_after(api):
    response = api.get("/api/test/throttled")
    _error(response, 429, "throttled")
    assert response["Retry-After"] == "17"


def test_an_application_error_keeps_its_status_code_field_and_headers(api):
    response = api.get("/api/test/unavailable")
    error = _error(response, 503, "service_unavailable")
    assert error["message"] == "The ledger is in maintenance."
    assert error["fields"] == {"ledger": ["The ledger is in maintenance."]}
    assert response["Retry-After"] == "30"


def test_an_unexpected_error_is_500_without_internals_and_logged_with_the_request_id(api, caplog):
    with caplog.at_level(logging.ERROR, logger="api"):
        response = api.get("/api/test/boom", HTTP_X_REQUEST_ID="req-0123456789")
    _error(response, 500, "internal_error")
    assert "secret internals" not in response.content.decode()
    assert "Traceback" not in response.content.decode()
    assert "req-0123456789" in caplog.text
    assert "secret internals" in caplog.text  # the traceback is in the log instead


def test_an_unknown_api_url_is_a_json_404(api, client, settings):
    _error(client.get("/api/nothing/here"), 404, "not_found")
    _error(api.post("/api/v2/loans/", {}, content_type="application/json"), 404, "not_found")
    _error(client.get("/api/v1/loans"), 404, "not_found")  # no slash redirect either
    settings.DEBUG = True  # Django's HTML debug 404 page is not used under /api/ either
    _error(client.get("/api/nothing/here"), 404, "not_found")


def test_a_post_to_an_unknown_api_url_is_a_json_404_not_a_csrf_page():
    strict = Client(enforce_csrf_checks=True)  # as a real client is: no CSRF cookie
    _error(strict.post("/api/v1/banking-partners/not a slug/results"), 404, "not_found")
    _error(strict.post("/api/nothing/here", {}), 404, "not_found")


def test_django_errors_outside_drf_views_are_json_under_api_only():
    browser = Client(raise_request_exception=False)
    _error(browser.get("/api/test/django-boom"), 500, "internal_error")
    page = browser.get("/no/such/page")
    assert page.status_code == 404
    assert page["Content-Type"].startswith("text/html")
