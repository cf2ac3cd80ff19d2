import pytest

from audit.models import AuditMessage
from core import context


@pytest.fixture(autouse=True)
def empty_outbox(request):
    """Start from an empty outbox: ``migrate`` (roles) and earlier transactional tests
    leave audit rows behind."""
    if request.node.get_closest_marker("django_db"):
        AuditMessage.objects.all().delete()


@pytest.fixture(autouse=True)
def fresh_request_context():
    """Each test starts as "the system" (no actor), whatever an earlier test left bound."""
    token = context.bind(context.RequestContext(request_id=context.new_request_id()))
    yield
    context.reset(token)
