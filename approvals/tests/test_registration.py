"""Approval kinds are registered one way: each owning app's ``AppConfig.ready()`` registers
the handlers defined next to its services. A second, different handler for a kind is
refused; the same handler again changes nothing."""

import json

import pytest
from django.core.exceptions import ImproperlyConfigured

from approvals import services
from approvals.models import ApprovalRequest
from approvals.services import KindHandler, handler_for, register_kind, registered_kinds
from loans.services import APPROVAL_KINDS as LOAN_KINDS
from mandates.services.lifecycle import APPROVAL_KINDS as MANDATE_KINDS
from payments.services.reversal import APPROVAL_KINDS as PAYMENT_KINDS
from tests.processes import project_run


def _noop(*, request, actor) -> None:
    pass


@pytest.fixture
def handlers(monkeypatch):
    """The registry as the apps left it, restored after the test."""
    monkeypatch.setattr(services, "_handlers", dict(services._handlers))


@pytest.mark.django_db
def test_every_kind_of_the_choices_and_of_the_rows_has_a_handler():
    kinds = set(ApprovalRequest.Kind.values)
    kinds |= set(ApprovalRequest.objects.values_list("kind", flat=True).distinct())
    assert kinds <= registered_kinds()
    assert registered_kinds() <= set(ApprovalRequest.Kind.values), "a handler for no kind"


def test_each_app_registers_the_handlers_defined_beside_its_services():
    for owned in (LOAN_KINDS, PAYMENT_KINDS, MANDATE_KINDS):
        for kind, handler in owned.items():
            assert handler_for(kind) is handler


def test_a_fresh_process_has_every_kind_after_django_setup():
    """No test module has imported a service first: ready() alone registers them."""
    script = (
        "import json, django; django.setup(); "
        "from approvals.models import ApprovalRequest; "
        "from approvals.services import registered_kinds; "
        "print(json.dumps([sorted(ApprovalRequest.Kind.values), sorted(registered_kinds())]))"
    )
    result = project_run("-c", script)
    assert result.returncode == 0, result.stderr
    choices, registered = json.loads(result.stdout.strip().splitlines()[-1])
    assert choices == registered


def test_registering_the_same_handler_again_changes_nothing(handlers):
    handler = handler_for("CHARGE_WAIVER")
    register_kind("CHARGE_WAIVER", handler)
    register_kind("CHARGE_WAIVER", KindHandler(**handler.__dict__))  # equal, not identical
    assert handler_for("CHARGE_WAIVER") == handler


def test_another_handler_for_a_registered_kind_is_refused(handlers):
    before = handler_for("PAYMENT_REVERSAL")
    other = KindHandler(
        maker_permission="payments.request_reversal",
        checker_permission="payments.approve_reversal",
        apply=_noop,
    )
    with pytest.raises(ImproperlyConfigured, match="PAYMENT_REVERSAL"):
        register_kind("PAYMENT_REVERSAL", other)
    assert handler_for("PAYMENT_REVERSAL") is before


def test_a_new_kind_is_registered_once(handlers):
    handler = KindHandler(maker_permission="a.b", checker_permission="a.c", apply=_noop)
    register_kind("SOMETHING_NEW", handler)
    assert handler_for("SOMETHING_NEW") is handler
    with pytest.raises(ImproperlyConfigured):
        register_kind("SOMETHING_NEW", KindHandler("a.b", "a.d", _noop))
