"""The Content-Security-Policy does not break the pages that run scripts: in headless
Chromium the reconciliation dashboard draws its charts and Swagger UI renders the API,
with no policy violation reported."""

import pytest
from django.urls import reverse

from tests.browser import log_in
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Installed before any page script runs (through the DevTools protocol, so the policy
# does not apply to it): records every violation the page reports.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"}`);
});
"""


@pytest.fixture
def browser_page(page):
    page.add_init_script(RECORD_VIOLATIONS)
    page.console_messages_seen = []
    page.on("console", lambda msg: page.console_messages_seen.append(msg.text))
    return page


def _violations(page) -> list[str]:
    reported = page.evaluate("window.__cspViolations")
    in_console = [text for text in page.console_messages_seen if "Content Security Policy" in text]
    return reported + in_console


def test_dashboard_and_api_docs_run_under_the_policy(live_server, browser_page):
    page = browser_page
    admin = UserFactory(username="csp.admin", is_superuser=True)

    log_in(page, live_server, admin)
    assert _violations(page) == []

    response = page.goto(f"{live_server.url}{reverse('reconciliation:dashboard')}")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_load_state("load")
    charts = page.evaluate(
        "Array.from(document.querySelectorAll('canvas'))"
        ".map((canvas) => Boolean(window.Chart && Chart.getChart(canvas)))"
    )
    assert charts == [True] * 5  # every chart drawn: Chart.js and the page's script ran
    assert _violations(page) == []

    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".swagger-ui .info .title")
    page.wait_for_selector(".opblock-summary-path")  # the schema was fetched and rendered
    assert "Payments back-office API" in page.locator(".swagger-ui .info .title").inner_text()
    assert _violations(page) == []
