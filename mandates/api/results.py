"""A banking partner's results applied one by one, with an outcome or an error per result.

Used by the partner results API and by the admin's response-file upload, so that both
answer alike. Each result goes through ``mandates.services.execution_result_apply``
(applied once; the same result again is a ``duplicate``; another result for the same
execution is a ``result_conflict`` error).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import IntegrityError
from pynamodb.exceptions import PynamoDBException

from core.errors import ApplicationError, ServiceUnavailable

from .. import services
from ..selectors import recorded_results
from ..services import PartnerResult

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResultOutcome:
    execution_id: str
    outcome: str | None = None  # "applied" or "duplicate"
    error: ApplicationError | None = None


def result_apply(*, partner_code: str, result: PartnerResult) -> ResultOutcome:
    try:
        outcome = services.execution_result_apply(
            partner_code=partner_code,
            execution_id=result.execution_id,
            status=result.status,
            return_code=result.return_code,
            reason=result.reason,
        )
    except IntegrityError:
        raced = _raced(result)
        if raced is None:
            raise
        return raced
    except PynamoDBException as exc:
        return _unavailable(result, exc)
    except ApplicationError as exc:
        if exc.status >= 500:
            return _unavailable(result, exc)
        return ResultOutcome(result.execution_id, error=exc)
    return ResultOutcome(result.execution_id, outcome=outcome)


def _raced(result: PartnerResult) -> ResultOutcome | None:
    """Two deliveries of a result for one execution at once: the service's check for an
    existing result ran before the other committed, so the unique execution id refused the
    second. What was recorded decides: the same result is a duplicate, another a conflict
    (None: nothing was recorded, the IntegrityError was about something else)."""
    recorded = recorded_results([result.execution_id]).get(result.execution_id)
    if recorded is None:
        return None
    if recorded == (result.status, result.return_code):
        return ResultOutcome(result.execution_id, outcome="duplicate")
    return ResultOutcome(
        result.execution_id, error=services.execution_result_conflict(result.execution_id, recorded)
    )


def _unavailable(result: PartnerResult, exc: Exception) -> ResultOutcome:
    """A store was down. The result may be in the ledger already with only its DynamoDB
    side pending (the outbox relay finishes it): then it was applied. Otherwise the partner
    sends it again later."""
    if recorded_results([result.execution_id]).get(result.execution_id) == (
        result.status,
        result.return_code,
    ):
        return ResultOutcome(result.execution_id, outcome="applied")
    logger.warning("result %s not applied: %s", result.execution_id, exc)
    return ResultOutcome(
        result.execution_id,
        error=ServiceUnavailable(
            "A store is unavailable; send this result again later.", code="store_unavailable"
        ),
    )


def results_apply(*, partner_code: str, results: Iterable[PartnerResult]) -> list[ResultOutcome]:
    return [result_apply(partner_code=partner_code, result=result) for result in results]


def outcome_counts(outcomes: Iterable[ResultOutcome]) -> Counter:
    return Counter(o.outcome or "error" for o in outcomes)
