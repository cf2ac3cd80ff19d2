"""Property-based fuzzing of the whole API with schemathesis, against the app's own schema.

Every operation of the OpenAPI schema is called with generated requests (the schema's
examples, boundary values, random valid and invalid input, and strings stores choke on)
as an API client that has every scope, sees the seeded branch and speaks for the seeded
banking partner. Each response must not be a server error and must conform to the schema:
a documented status, the documented content type, a body and headers of the documented
shape.

Generated values for the names that refer to stored rows (``loan_account``, ``txn_id``,
``execution_id``...) are, in half the random cases, replaced by the seeded rows' values,
so that valid requests reach the success paths and not only the 404s. Requests run
through Django's WSGI handler inside the test's transaction (rolled back after each
operation); the DynamoDB items they write are removed by the suite's ``clean_stores``
fixture, and the posting tasks they queue are dropped.

Deterministic for CI: a fixed seed, derandomized generation, no example database, and
a bounded number of examples per operation. To search harder while developing, raise
``MAX_EXAMPLES`` or change the seed locally.
"""

from __future__ import annotations

import json
import uuid
from datetime import date
from decimal import Decimal

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation

from accounts.tests.factories import BranchFactory
from api import scopes
from api.models import ApiClient
from api.principal import ApiPrincipal
from config.celery import app as celery_app
from loans.tests.factories import make_loan
from mandates import services as mandate_services
from mandates.models import ScheduledPresentation
from mandates.tests.factories import active_mandate, actors
from payments.services import PaymentInput, payment_ingest

from .factories import key_header, make_api_client

pytestmark = pytest.mark.django_db

IDEMPOTENCY_KEY = "Idempotency-Key"
MAX_EXAMPLES = 40
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
)
# Strings that stores and parsers choke on, mixed into generated strings: a NUL (which
# PostgreSQL refuses in text), one longer than a DynamoDB key may be, and other odd ones.
AWKWARD_STRINGS = ["\x00", "x" * 2100, "\u202e", "1e999"]
CONFIG = {
    "seed": 20260107,
    "generation": {
        "mode": "all",  # valid and invalid input
        "max-examples": MAX_EXAMPLES,
        "deterministic": True,
        "database": "none",
        "with-security-parameters": False,  # the client's key is sent with every call
    },
    "phases": {
        "examples": {"enabled": True},
        "coverage": {"enabled": True},
        "fuzzing": {
            "enabled": True,
            # not in the examples phase: there a NUL would be an unsendable header value
            "generation": {
                "dictionaries": {"string": {"dictionary": "awkward", "probability": 0.3}}
            },
        },
        "stateful": {"enabled": False},
    },
    "dictionaries": {"awkward": {"values": AWKWARD_STRINGS}},
    "continue-on-failure": True,  # every distinct failure of an operation, not the first
    "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
}

# The seeded rows' values by the name requests use for them; filled by the ``world``
# fixture of the running test and read when a case is drawn.
SEEDED: dict[str, str] = {}


def served_schema() -> dict:
    """The document ``/api/schema/`` serves (same generator, same settings), built at
    collection time, when there is no database to authenticate a request against;
    ``test_the_fuzzed_schema_is_the_served_one`` checks that they are the same."""
    document = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(document))


def seeded(value):
    """``value`` with every key that names a seeded row pointing at it (nested too)."""
    if isinstance(value, dict):
        return {
            name: SEEDED[name] if name in SEEDED else seeded(item) for name, item in value.items()
        }
    if isinstance(value, list):
        return [seeded(item) for item in value]
    return value


def as_generated(case):
    return case


def with_seeded_rows(case):
    """The generated case pointing at the seeded rows wherever it names one."""
    case.path_parameters = seeded(case.path_parameters)
    case.query = seeded(case.query)
    case.body = seeded(case.body)
    return case


def with_every_seeded_filter(case):
    """The generated case pointing at the seeded rows, with every optional filter (query
    parameter) that names one."""
    case = with_seeded_rows(case)
    declared = [parameter.name for parameter in case.operation.query]
    case.query = {**(case.query or {}), **{n: SEEDED[n] for n in declared if n in SEEDED}}
    return case


schema = schemathesis.openapi.from_dict(
    served_schema(), config=SchemathesisConfig.from_dict(CONFIG)
)
schema.app = WSGIHandler()


@schema.hook
def before_generate_case(context, strategy):
    """Half the cases as generated, half pointing at the seeded rows."""
    pointers = st.sampled_from(
        [as_generated, as_generated, with_seeded_rows, with_every_seeded_filter]
    )
    return st.tuples(pointers, strategy).map(lambda drawn: drawn[0](drawn[1]))


@pytest.fixture
def world():
    """A branch with a loan under an active mandate whose first debit was presented to
    the sandbox partner, a payment on the loan, and a client that may do everything:
    the client's key."""
    branch = BranchFactory()
    people = actors(branch)
    loan = make_loan(branch=branch, disbursed_on=date(2026, 10, 1), tenure_months=12)
    mandate = active_mandate(loan, people)
    first = ScheduledPresentation.objects.filter(mandate=mandate).order_by("due_date").first()
    mandate_services.mandates_present_due(run_date=first.presentation_date)
    first.refresh_from_db()
    client, key = make_api_client(
        scopes=sorted(scopes.ALL_SCOPES),
        branches=[branch],
        kind=ApiClient.Kind.BANKING_PARTNER,
        banking_partner=mandate.banking_partner,
    )
    txn = payment_ingest(
        payment=PaymentInput(loan_number=loan.loan_number, amount=Decimal("500.00"), mode="CASH"),
        idempotency_key="fuzz-seed-0001",
        principal=ApiPrincipal(client),
        source=f"api:{client.pk}",
    ).body
    SEEDED.update(
        {
            "code": mandate.banking_partner.code,
            "loan_number": loan.loan_number,
            "loan_account": loan.loan_number,
            "branch": branch.code,
            "business_date": txn["business_date"],
            "txn_id": txn["txn_id"],
            "execution_id": mandate_services.execution_id_for(first, first.attempts),
            "amount": "250.00",
        }
    )
    yield key
    SEEDED.clear()


@pytest.fixture
def in_test_transaction():
    """Django's WSGI handler inside the test's transaction: as with Django's test client,
    the request signals must not close the connection that holds the transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def no_tasks_left_behind():
    """Accepted payments queue their posting task; their items are gone after the test,
    so the tasks are dropped rather than left for a later test's worker."""
    yield
    celery_app.control.purge()


@schema.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # one world for all cases
def test_every_operation_answers_as_documented(
    case, world, in_test_transaction, no_tasks_left_behind
):
    with_fresh_idempotency_key(case)
    case.call_and_validate(headers={"Authorization": f"Api-Key {world}"})


def with_fresh_idempotency_key(case) -> None:
    """Each write gets a key of its own, so that a generated body is judged by itself and
    not replayed (or refused) as the retry of another. A deliberately invalid or missing
    key (a negative case for the headers) is left as generated."""
    headers = case.headers or {}
    if IDEMPOTENCY_KEY in headers and not case.meta.is_negative_at(ParameterLocation.HEADER):
        headers[IDEMPOTENCY_KEY] = str(uuid.uuid4())


def test_the_fuzzed_schema_is_the_served_one(client):
    _, key = make_api_client()
    response = client.get("/api/schema/", {"format": "json"}, **key_header(key))
    assert response.status_code == 200
    assert response.json() == served_schema()
