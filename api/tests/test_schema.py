"""The OpenAPI schema validates without warnings; Swagger UI is served from local files."""

import re

import pytest
import yaml
from django.contrib.staticfiles import finders
from django.core.management import call_command

from accounts.tests.factories import UserFactory

from .factories import key_header, make_api_client

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
