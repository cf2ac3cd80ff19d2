"""Production settings pass Django's deployment checks, and every response carries the
security headers: a Content-Security-Policy without inline scripts, X-Frame-Options,
nosniff and Referrer-Policy everywhere; HSTS, the HTTPS redirect and Secure cookies only
in production (``DJANGO_DEBUG`` off).

Production mode is checked in a subprocess with a production-like environment, because
``config.settings`` decides it once, at import."""

from __future__ import annotations

import json
import re
import secrets
import subprocess

import pytest
from django.urls import reverse

from api import scopes
from tests.factories import BranchFactory, UserFactory, key_header, make_api_client, make_loan
from tests.processes import environment, project_run

pytestmark = pytest.mark.django_db

PRODUCTION_HOST = "backoffice.example.com"
HSTS = "max-age=31536000; includeSubDomains; preload"


def _environment(**overrides: str) -> dict[str, str]:
    """This process's environment as production would set it: DEBUG off, a real secret,
    the public host name, and config.settings (not the test settings)."""
    return environment(
        drop=("DJANGO_",),
        **{
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": PRODUCTION_HOST,
            **overrides,
        },
    )


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return project_run("manage.py", *args, env=env)


def test_check_deploy_is_clean_under_production_settings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=_environment())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNINGS" not in result.stderr


def test_check_deploy_fails_when_a_production_safeguard_is_switched_off():
    """The check above can fail: without HSTS or Secure cookies it reports them."""
    env = _environment(DJANGO_HSTS_SECONDS="0", DJANGO_SECURE_COOKIES="0")
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode != 0
    for check_id in ("security.W004", "security.W011", "security.W016"):
        assert check_id in result.stderr


# Runs inside a process with the given environment: requests through Django's test client
# (no server), printed as JSON. GET /admin/login/ needs neither a session nor a query.
_PROBE = """
import json
from django.test import Client

client = Client(HTTP_HOST="backoffice.example.com")

def probe(path, secure):
    response = client.get(path, secure=secure)
    return {
        "status": response.status_code,
        "location": response.get("Location"),
        "headers": {k.lower(): v for k, v in response.headers.items()},
        "cookies": {
            name: {
                "secure": bool(morsel["secure"]),
                "httponly": bool(morsel["httponly"]),
                "samesite": morsel["samesite"],
            }
            for name, morsel in response.cookies.items()
        },
    }

print(json.dumps({
    "https": probe("/admin/login/", True),
    "http": probe("/admin/login/", False),
    "health_http": probe("/health/live", False),
}))
"""


def _probe(env: dict[str, str]) -> dict:
    result = _manage("shell", "--no-imports", "-c", _PROBE, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_sends_hsts_redirects_to_https_and_marks_cookies_secure():
    seen = _probe(_environment())

    https = seen["https"]
    assert https["status"] == 200
    assert https["headers"]["strict-transport-security"] == HSTS
    assert "script-src 'self'" in https["headers"]["content-security-policy"]
    assert https["cookies"]["csrftoken"] == {"secure": True, "httponly": True, "samesite": "Lax"}

    assert seen["http"]["status"] == 301
    assert seen["http"]["location"] == f"https://{PRODUCTION_HOST}/admin/login/"
    # load balancers probe health over plain HTTP
    assert seen["health_http"]["status"] == 200


def test_development_sends_no_hsts_and_no_redirect():
    env = _environment(DJANGO_DEBUG="1", DJANGO_ALLOWED_HOSTS=PRODUCTION_HOST)
    seen = _probe(env)
    assert seen["http"]["status"] == 200
    assert "strict-transport-security" not in seen["http"]["headers"]
    assert seen["http"]["cookies"]["csrftoken"]["secure"] is False
    # the rest of the headers are the same in development
    assert "script-src 'self'" in seen["http"]["headers"]["content-security-policy"]
    assert seen["http"]["headers"]["x-frame-options"] == "DENY"


# --- Headers on every kind of page, in this (test) process -------------------------------


def _csp(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {
        directive.split()[0]: directive.split()[1:]
        for directive in (part.strip() for part in policy.split(";"))
        if directive
    }


def _assert_security_headers(response) -> None:
    csp = _csp(response)
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]  # no 'unsafe-inline', no 'unsafe-eval', no CDN
    assert csp["object-src"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_an_admin_page_carries_the_security_headers(client):
    client.force_login(UserFactory(is_superuser=True))
    response = client.get(reverse("admin:loans_loanaccount_changelist"))
    assert response.status_code == 200
    _assert_security_headers(response)


def test_the_login_page_carries_the_security_headers(client):
    response = client.get(reverse("admin:login"))
    assert response.status_code == 200
    _assert_security_headers(response)


def test_the_api_carries_the_security_headers(client):
    branch = BranchFactory()
    make_loan(branch=branch)
    _, raw_key = make_api_client(scopes=[scopes.LOANS_READ], branches=[branch])
    response = client.get("/api/v1/loans/", **key_header(raw_key))
    assert response.status_code == 200
    _assert_security_headers(response)
    refused = client.get("/api/v1/loans/")
    assert refused.status_code == 401
    _assert_security_headers(refused)


def test_the_api_docs_carry_the_security_headers(client):
    client.force_login(UserFactory(is_superuser=True))
    page = client.get("/api/docs/")
    assert page.status_code == 200
    _assert_security_headers(page)
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200
    _assert_security_headers(script)


_SCRIPT_TAG = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.S | re.I)


@pytest.mark.parametrize(
    "url",
    [
        "/admin/",
        "/admin/loans/loanaccount/",
        "/admin/loans/loanaccount/add/",
        "/admin/reconciliation/dcr/",
        "/reconciliation/dashboard/",
        "/approvals/",
        "/api/docs/",
    ],
)
def test_pages_have_no_inline_script_the_policy_would_block(client, url):
    """Every <script> either loads a file from this site or is JSON data (json_script),
    which the browser never executes; no on* handler attributes."""
    client.force_login(UserFactory(is_superuser=True))
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    scripts = _SCRIPT_TAG.findall(html)
    assert scripts
    for attributes, body in scripts:
        if 'type="application/json"' in attributes:
            continue
        assert re.search(r'\bsrc="/', attributes), f"inline script on {url}: {body[:80]!r}"
        assert not body.strip()
    assert not re.search(r"<[^>]+\son[a-z]+\s*=", html), f"an on* handler on {url}"
