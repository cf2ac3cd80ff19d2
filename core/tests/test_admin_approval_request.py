"""The one "request an approval with a reason" admin page (``core.admin.approval_request``)
in each of its uses: a payment's reversal, a charge's waiver, a mandate's suspension."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.contrib.messages import constants
from django.test import Client

from approvals.models import ApprovalRequest
from loans.models import LoanCharge
from payments.models import Posting
from payments.services import payments_post_due
from tests.factories import active_mandate, bounce_charge, pay
from tests.world import World

pytestmark = pytest.mark.django_db


def _posting(world: World) -> Posting:
    pay(world.loans["own"], "1000.00")
    payments_post_due()
    return Posting.objects.get(loan=world.loans["own"])


def _charge(world: World) -> LoanCharge:
    return bounce_charge(world.loans["own"])


def _mandate(world: World):
    return active_mandate(world.loans["own"], world.people)


@dataclass(frozen=True)
class Use:
    subject: Callable[[World], object]
    page: str  # the page's URL, with {pk}
    change: str  # the subject's change page, with {pk}
    kind: str
    form_id: str
    requested: str  # the start of the success message
    refused: str  # the start of a refusal's message
    post_only: bool = False
    data: dict[str, str] = field(default_factory=dict)  # the fields beyond the reason


USES = {
    "reversal": Use(
        _posting,
        "/admin/payments/posting/{pk}/reversal/",
        "/admin/payments/posting/{pk}/change/",
        "PAYMENT_REVERSAL",
        "reversal-form",
        "Reversal requested; it waits for a checker",
        "Reversal not requested: ",
    ),
    "waiver": Use(
        _charge,
        "/admin/loans/loancharge/{pk}/waiver/",
        "/admin/loans/loancharge/{pk}/change/",
        "CHARGE_WAIVER",
        "reason-form",
        "Waiver requested; it waits for a checker",
        "Waiver not requested: ",
    ),
    "suspension": Use(
        _mandate,
        "/admin/mandates/mandate/{pk}/stop-request/",
        "/admin/mandates/mandate/{pk}/change/",
        "MANDATE_SUSPENSION",
        "stop-request-form",
        "The suspension was requested; it waits for a checker",
        "Not requested: ",
        post_only=True,
        data={"action": "SUSPEND"},
    ),
}


@pytest.fixture(params=sorted(USES))
def use(request, world):
    """(the use, its subject's page URL, its change URL) at ``world``'s ``own`` branch."""
    spec = USES[request.param]
    subject = spec.subject(world)
    return spec, spec.page.format(pk=subject.pk), spec.change.format(pk=subject.pk)


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _messages(response) -> list[tuple[int, str]]:
    return [(m.level, str(m)) for m in response.context["messages"]]


def test_the_maker_gets_the_form(use, world):
    spec, url, change_url = use
    manager = _client(world.users["BM"])
    if spec.post_only:  # the form is on the change page, and posts to the page
        assert manager.get(url).status_code == 405
        page = manager.get(change_url).content.decode()
        assert f'action="{url}" id="{spec.form_id}"' in page
        return
    response = manager.get(url)
    assert response.status_code == 200
    assert "admin/approval_request.html" in [t.name for t in response.templates]
    html = response.content.decode()
    assert f'id="{spec.form_id}"' in html and 'name="reason"' in html
    assert f'href="{change_url}" class="closelink"' in html


def test_a_blank_reason_is_a_field_message_and_nothing_is_written(use, world):
    spec, url, _ = use
    response = _client(world.users["BM"]).post(url, {"reason": "   ", **spec.data})
    assert response.status_code == 200
    assert "admin/approval_request.html" in [t.name for t in response.templates]
    missing = response.context["form"].reason_missing
    assert missing.startswith("Give a reason")
    assert response.context["form"].errors["reason"] == [missing]
    html = response.content.decode()
    assert f'id="{spec.form_id}"' in html and missing in html
    assert not ApprovalRequest.objects.exists()


def test_a_reason_makes_the_request_and_the_message_links_it(use, world):
    spec, url, change_url = use
    manager = _client(world.users["BM"])
    response = manager.post(url, {"reason": "  the customer asked  ", **spec.data})
    assert (response.status_code, response["Location"]) == (302, change_url)
    request = ApprovalRequest.objects.get()
    assert (request.kind, request.status, request.maker, request.reason) == (
        spec.kind,
        "PENDING",
        world.users["BM"],
        "the customer asked",
    )
    shown = _messages(manager.get(change_url))
    assert len(shown) == 1
    level, text = shown[0]
    assert level == constants.SUCCESS and text.startswith(spec.requested)
    assert f'href="{request.get_absolute_url()}"' in text


def test_a_refusal_of_the_service_is_a_message_and_nothing_more_is_written(use, world):
    spec, url, change_url = use
    manager = _client(world.users["BM"])
    manager.post(url, {"reason": "first", **spec.data})
    again = manager.post(url, {"reason": "second", **spec.data}, follow=True)
    assert again.redirect_chain == [(change_url, 302)]
    level, text = _messages(again)[-1]
    assert level == constants.ERROR and text.startswith(spec.refused)
    assert ApprovalRequest.objects.count() == 1


def test_without_the_makers_permission_the_page_is_403_and_nothing_is_written(use, world):
    spec, url, _ = use
    staff = _client(world.users["BS"])
    if not spec.post_only:
        assert staff.get(url).status_code == 403
    assert staff.post(url, {"reason": "please", **spec.data}).status_code == 403
    assert not ApprovalRequest.objects.exists()
