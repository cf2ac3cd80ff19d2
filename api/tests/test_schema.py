"""The OpenAPI schema validates without warnings; Swagger UI is served from local files."""

import re

import pytest
import yaml
from django.contrib.staticfiles import finders
from django.core.management import call_command

from tests.factories import UserFactory, key_header, make_api_client

pytestmark = pytest.mark.django_db


def test_the_schema_validates_without_warnings(tmp_path):
    target = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    schema = yaml.safe_load(target.read_text())
    schemes = schema["components"]["securitySchemes"]
    assert schemes["ApiKeyAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-Api-Key",
        "description": schemes["ApiKeyAuth"]["description"],
    }
    envelope = schema["components"]["schemas"]["ErrorEnvelope"]
    assert envelope["properties"]["error"]["$ref"] == "#/components/schemas/ErrorDetail"
    detail = schema["components"]["schemas"]["ErrorDetail"]
    assert set(detail["properties"]) == {"code", "message", "fields", "details"}
    listing = schema["paths"]["/api/v1/loans/"]["get"]
    assert {"ApiKeyAuth": []} in listing["security"]
    assert "loans:read" in listing["description"]
    for status in ("400", "401", "403"):
        ref = listing["responses"][status]["content"]["application/json"]["schema"]["$ref"]
        assert ref == "#/components/schemas/ErrorEnvelope"
    detail_op = schema["paths"]["/api/v1/loans/{loan_number}"]["get"]
    assert "404" in detail_op["responses"]
    loan = schema["components"]["schemas"]["LoanAccount"]["properties"]
    assert loan["sanctioned_amount"]["type"] == "string"
    assert not {"mobile", "pan"} & set(loan)


def test_numbered_pages_document_the_404_of_a_page_out_of_range(tmp_path):
    target = tmp_path / "schema.yml"
    call_command("spectacular", "--file", str(target))
    listing = yaml.safe_load(target.read_text())["paths"]["/api/v1/loans/"]["get"]
    ref = listing["responses"]["404"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/ErrorEnvelope"


def test_the_schema_is_served_to_authenticated_callers_only(client):
    denied = client.get("/api/schema/")
    assert denied.status_code == 401
    assert denied.json()["error"]["code"] == "not_authenticated"
    _, raw_key = make_api_client()
    served = client.get("/api/schema/", **key_header(raw_key))
    assert served.status_code == 200
    assert "/api/v1/loans/" in served.content.decode()


def test_swagger_ui_renders_from_local_static_files_only(client):
    client.force_login(UserFactory(is_superuser=True))
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    # the start-up script is this view's own URL (no inline script, for the CSP)
    assets.remove("/api/docs/?script=")
    assert len(assets) >= 4  # css, favicon, bundle, preset
    for url in assets:
        assert url.startswith("/static/drf_spectacular_sidecar/"), url
        assert finders.find(url.removeprefix("/static/")), url
    assert "cdn" not in html.lower()
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "/api/schema/" in script.content.decode()


def test_swagger_ui_sends_people_who_are_not_logged_in_to_the_login(client):
    response = client.get("/api/docs/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=%2Fapi%2Fdocs%2F"


def _served(client) -> dict:
    _, raw_key = make_api_client()
    response = client.get("/api/schema/", {"format": "json"}, **key_header(raw_key))
    return response.json()


def test_lists_validated_item_by_item_document_their_bounds_and_per_item_errors(client):
    schema = _served(client)["components"]["schemas"]
    for body, field, item, most in (
        ("PaymentBatchRequest", "items", "BatchItemRequest", 100),
        ("PartnerResultsRequest", "results", "PartnerResultRequest", 500),
    ):
        listed = schema[body]["properties"][field]
        assert (listed["minItems"], listed["maxItems"]) == (1, most)
        first, other = listed["items"]["anyOf"]
        assert first == {"$ref": f"#/components/schemas/{item}"}
        assert other["type"] == "object" and "`invalid`" in other["description"]


def test_the_list_of_transactions_documents_the_filters_it_needs(client):
    listing = _served(client)["paths"]["/api/v1/transactions"]["get"]
    assert "`loan_account`, or `branch` and `business_date`" in listing["description"]
    assert "filter_required" in listing["responses"]["400"]["description"]
    page_size = next(p for p in listing["parameters"] if p["name"] == "page_size")
    assert page_size["schema"] == {"type": "integer", "minimum": 1}


def test_writes_document_the_request_limits_and_each_error_code(client):
    paths = _served(client)["paths"]
    for path in ("/api/v1/transactions", "/api/v1/transactions/batch"):
        responses = paths[path]["post"]["responses"]
        assert "request_too_large" in responses["413"]["description"], path
        assert "too_deeply_nested" in responses["400"]["description"], path
        conflicts = responses["409"]["description"]
        assert "`idempotency_key_reused`" in conflicts and "`request_in_flight`" in conflicts
    results = paths["/api/v1/banking-partners/{code}/results"]["post"]["responses"]
    assert "request_too_large" in results["413"]["description"]


def test_text_a_request_sends_is_documented_without_nul(client):
    schema = _served(client)
    receipt = schema["components"]["schemas"]["PaymentInRequest"]["properties"]["receipt_number"]
    assert receipt["pattern"] == "^[^\\u0000]*$"
    listing = schema["paths"]["/api/v1/loans/"]["get"]["parameters"]
    assert next(p for p in listing if p["name"] == "branch")["schema"]["pattern"] == (
        "^[^\\u0000]*$"
    )
    amount = schema["components"]["schemas"]["PaymentInRequest"]["properties"]["amount"]
    assert amount["pattern"].startswith("^(") and "\\u0000" not in amount["pattern"]
