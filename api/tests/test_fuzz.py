"""Property-based fuzzing of the whole API with schemathesis, against the app's own schema.

Every operation of the OpenAPI schema is called with generated requests (the schema's
examples, boundary values, random valid and invalid input, and strings stores choke on)
as an API client that has every scope, sees the seeded branch and speaks for the seeded
banking partner, with all of schemathesis's checks (what ``--checks all`` runs): no server
error; a documented status, content type, body and headers; schema-valid requests
accepted and schema-violating ones refused; a missing required header or an unsupported
method refused; no answer without the key. The schema therefore says what the server
enforces: a client generated from it is not misled.

The stateful phase then runs sequences of calls along the schema's OpenAPI links (from
``POST /transactions`` to ``GET /transactions/{txn_id}``): what was created can be read,
with the same checks.

Generated values for the names that refer to stored rows (``loan_account``, ``txn_id``,
``execution_id``...) are, in half the random cases, replaced by the seeded rows' values,
so that valid requests reach the success paths and not only the 404s. Requests run
through Django's WSGI handler inside the test's transaction (rolled back after each
operation); the DynamoDB items they write are removed by the suite's ``clean_stores``
fixture, and the posting tasks they queue are dropped.

Every write endpoint (read from the schema) is also sent a body over the size limit and a
deeply nested one: a 413 and a 400 JSON error, never a 500.

Deterministic for CI: a fixed seed, derandomized generation, no example database, and
a bounded number of examples per operation and of stateful scenarios. To search harder
while developing, raise ``MAX_EXAMPLES`` / ``STATEFUL_EXAMPLES`` or change the seed locally.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from decimal import Decimal

import pytest
import schemathesis
from django.conf import settings as settings_module
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.config import SchemathesisConfig
from schemathesis.config._checks import POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES
from schemathesis.core.parameters import ParameterLocation

from api import scopes
from api.limits import MAX_JSON_DEPTH
from api.models import ApiClient
from api.principal import ApiPrincipal
from config.celery import app as celery_app
from mandates import services as mandate_services
from mandates.models import ScheduledPresentation
from payments.services import PaymentInput, payment_ingest
from tests.factories import (
    active_mandate,
    key_header,
    make_api_client,
)

pytestmark = pytest.mark.django_db

IDEMPOTENCY_KEY = "Idempotency-Key"
MAX_EXAMPLES = 30
STATEFUL_EXAMPLES = 10
STATEFUL_STEPS = 6
# Strings that stores and parsers choke on, mixed into generated strings: a NUL (which
# PostgreSQL refuses in text), one longer than a DynamoDB key may be, and other odd ones.
# Digits that are not ASCII (Python's \d, int() and Decimal() read them as 0-9; the schema's
# patterns do not) stand in for amounts, ids and dates.
AWKWARD_STRINGS = [
    "\x00",
    "x" * 2100,
    "\u202e",
    "1e999",
    "\u0661\u0665\u0660\u0660",  # Arabic-Indic 1500
    "\uff11\uff15\uff10\uff10",  # full-width 1500
    "LN\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0661",
    "\u0662\u0660\u0662\u0666-\u0660\u0661-\u0660\u0662",  # 2026-01-02
]
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
        "stateful": {"enabled": True, "max-steps": STATEFUL_STEPS},
    },
    "dictionaries": {"awkward": {"values": AWKWARD_STRINGS}},
    "continue-on-failure": True,  # every distinct failure of an operation, not the first
    "checks": {"enabled": True},  # all of them, as --checks all
    "operations": [
        {
            # A schema cannot say "loan_account, or branch and business_date" of query
            # parameters: the operation's description does, and
            # ``the_list_needs_its_filters_as_documented`` checks exactly that rule instead.
            "include-operation-id": "transactions_list",
            "checks": {
                "positive_data_acceptance": {
                    "expected-statuses": [*POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES, "400"]
                }
            },
        }
    ],
}

# The seeded rows' values by the name requests use for them; filled by the ``fuzz_key``
# fixture of the running test and read when a case is drawn.
SEEDED: dict[str, str] = {}
# How the running test's client authenticates (the stateful machine reads it).
CALLER: dict[str, dict[str, str]] = {}


@functools.cache
def _served_schema_json() -> str:
    document = SchemaGenerator().get_schema(request=None, public=True)
    return OpenApiJsonRenderer().render(document).decode()


def served_schema() -> dict:
    """The document ``/api/schema/`` serves (same generator, same settings), built at
    collection time, when there is no database to authenticate a request against;
    ``test_the_fuzzed_schema_is_the_served_one`` checks that they are the same."""
    return json.loads(_served_schema_json())


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


@schemathesis.check
def the_list_needs_its_filters_as_documented(ctx, response, case):
    """The list of transactions answers ``filter_required`` exactly when a schema-valid
    request gives neither ``loan_account`` nor ``branch`` and ``business_date``."""
    if case.operation.definition.raw.get("operationId") != "transactions_list":
        return None
    query = case.query or {}
    given = bool(query.get("loan_account")) or bool(
        query.get("branch") and query.get("business_date")
    )
    refused = response.status_code == 400 and (
        response.json()["error"]["code"] == "filter_required"
    )
    if refused and given:
        raise AssertionError(f"filter_required although the filters were given: {query}")
    if not case.meta.generation.mode.is_negative and not given and not refused:
        raise AssertionError(f"no filter_required without the filters: {response.status_code}")
    return None


@schema.hook
def before_generate_case(context, strategy):
    """Half the cases as generated, half pointing at the seeded rows."""
    pointers = st.sampled_from(
        [as_generated, as_generated, with_seeded_rows, with_every_seeded_filter]
    )
    return st.tuples(pointers, strategy).map(lambda drawn: drawn[0](drawn[1]))


@pytest.fixture
def fuzz_key(world):
    """The loan of the shared world's ``own`` branch under an active mandate whose first
    debit was presented to the sandbox partner, a payment on the loan, and a client that
    may do everything: the client's key."""
    branch = world.branches["own"]
    loan = world.loans["own"]
    mandate = active_mandate(loan, world.people)
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
    # the header of the schema's security scheme, which the ignored_auth check leaves out
    CALLER["headers"] = {"X-Api-Key": key}
    yield key
    SEEDED.clear()
    CALLER.clear()


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
    case, fuzz_key, in_test_transaction, no_tasks_left_behind
):
    with_fresh_idempotency_key(case)
    case.call_and_validate(headers=CALLER["headers"])


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


class ApiWorkflow(schema.as_state_machine()):
    """Sequences of calls along the schema's links, as the client of ``fuzz_key``."""

    def before_call(self, case):
        with_seeded_rows(case)
        with_fresh_idempotency_key(case)

    def get_call_kwargs(self, case):
        return {"headers": CALLER["headers"]}

    def validate_response(self, response, case, additional_checks=None, **kwargs):
        # as call_and_validate does: the checks know the key was sent on purpose
        case.validate_response(
            response,
            additional_checks=additional_checks,
            headers=CALLER["headers"],
            transport_kwargs=kwargs or None,
            recorder=self.recorder,
        )


def test_sequences_along_the_links_answer_as_documented(
    fuzz_key, in_test_transaction, no_tasks_left_behind
):
    ApiWorkflow.run(
        settings=settings(
            max_examples=STATEFUL_EXAMPLES,
            stateful_step_count=STATEFUL_STEPS,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )


def test_the_schema_links_a_recorded_payment_to_reading_it():
    links = served_schema()["paths"]["/api/v1/transactions"]["post"]["responses"]["201"]["links"]
    assert links["GetTransaction"] == {
        "operationId": "transactions_retrieve",
        "parameters": {"txn_id": "$response.body#/txn_id"},
        "description": "The transaction just recorded.",
    }


def write_operations() -> list[tuple[str, str]]:
    """Every operation of the schema that takes a request body: (method, path)."""
    return [
        (method.upper(), path)
        for path, operations in served_schema()["paths"].items()
        for method, operation in operations.items()
        if method in ("post", "put", "patch", "delete") and "requestBody" in operation
    ]


def test_there_are_write_operations_to_try():
    assert ("POST", "/api/v1/transactions") in write_operations()
    assert len(write_operations()) >= 3


def _send(client, method: str, path: str, body: bytes):
    url = re.sub(r"\{(\w+)\}", lambda m: SEEDED[m.group(1)], path)
    return client.generic(
        method,
        url,
        body,
        content_type="application/json",
        **{
            "HTTP_X_API_KEY": CALLER["headers"]["X-Api-Key"],
            "HTTP_IDEMPOTENCY_KEY": str(uuid.uuid4()),
        },
    )


@pytest.mark.parametrize(("method", "path"), write_operations())
def test_a_body_over_the_size_limit_is_a_413_on_every_write(client, fuzz_key, method, path):
    body = b'{"items": ["' + b"x" * (settings_module.DATA_UPLOAD_MAX_MEMORY_SIZE + 1) + b'"]}'
    response = _send(client, method, path, body)
    assert response.status_code == 413, response.content[:300]
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "request_too_large"


@pytest.mark.parametrize(("method", "path"), write_operations())
@pytest.mark.parametrize("depth", [100_000, MAX_JSON_DEPTH + 1])
def test_a_deeply_nested_body_is_a_400_on_every_write(client, fuzz_key, method, path, depth):
    response = _send(client, method, path, b"[" * depth + b"]" * depth)
    assert response.status_code == 400, response.content[:300]
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "too_deeply_nested"
