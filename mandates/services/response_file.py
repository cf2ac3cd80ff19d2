"""A banking partner's response file, checked as a whole before anything is applied.

A CSV of ``execution_id,status,return_code,reason`` (a header line is optional). Each line
must be a valid result (``execution_result_validate``, the rules every result meets), name
an execution presented to this partner, and not contradict a result already recorded or an
earlier line. The admin's upload form shows the refusals; the results of a good file are
then applied one by one, as the partner results API applies them."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from pynamodb.exceptions import PynamoDBException

from core.errors import ServiceUnavailable
from loans.models import BankingPartner

from ..exceptions import ResponseFileRejected, ResultRejected
from ..refdata import return_codes
from ..selectors import executions_by_id, recorded_results
from .results import PartnerResult, execution_result_validate

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_LINES = 20_000
HEADER = ["execution_id", "status", "return_code", "reason"]


@dataclass(frozen=True)
class ResultLine:
    number: int
    result: PartnerResult


def response_file_read(*, content: bytes, partner: BankingPartner) -> list[ResultLine]:
    """The results of a response file (at most ``MAX_FILE_BYTES`` of it: pass one byte more
    to have a larger file refused), every line checked. Raises ``ResponseFileRejected``, for
    the file itself or with every bad line and its number, and ``ServiceUnavailable`` when
    the executions cannot be read."""
    if len(content) > MAX_FILE_BYTES:
        raise ResponseFileRejected(f"The file is larger than {MAX_FILE_BYTES // 1024 // 1024} MB.")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ResponseFileRejected("The file is not UTF-8 text (save it as CSV UTF-8).") from None
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise ResponseFileRejected(f"The file is not valid CSV: {exc}.") from None
    lines, bad = _parse(rows)
    if not bad and not lines:
        raise ResponseFileRejected("The file has no results.")
    if lines:
        bad += _against_records(lines, partner)
    if bad:
        raise ResponseFileRejected(
            f"{len(bad)} line(s) are invalid; nothing was applied.",
            code="bad_lines",
            lines=sorted(bad),
        )
    return lines


def _parse(rows: list[list[str]]) -> tuple[list[ResultLine], list[tuple[int, str]]]:
    policies = return_codes()
    lines: list[ResultLine] = []
    bad: list[tuple[int, str]] = []
    seen: dict[str, tuple[int, str, str]] = {}
    for number, row in enumerate(rows, start=1):
        if number > MAX_LINES:
            bad.append((number, f"The file has more than {MAX_LINES} lines: split it."))
            break
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        if number == 1 and [c.lower() for c in cells[:4]] == HEADER[: len(cells[:4])]:
            continue
        if not 2 <= len(cells) <= 4:
            bad.append(
                (number, f"Expected 2 to 4 columns ({', '.join(HEADER)}), found {len(cells)}.")
            )
            continue
        result = PartnerResult(
            execution_id=cells[0],
            status=cells[1].upper(),
            return_code=cells[2] if len(cells) > 2 else "",
            reason=cells[3] if len(cells) > 3 else "",
        )
        try:
            execution_result_validate(result, policies=policies)
        except ResultRejected as exc:
            bad.append((number, exc.message))
            continue
        earlier = seen.get(result.execution_id)
        if earlier and earlier[1:] != (result.status, result.return_code):
            bad.append(
                (
                    number,
                    f"{result.execution_id} contradicts line {earlier[0]} "
                    f"({earlier[1]} {earlier[2]}".strip()
                    + ").",
                )
            )
            continue
        seen.setdefault(result.execution_id, (number, result.status, result.return_code))
        lines.append(ResultLine(number, result))
    return lines, bad


def _against_records(lines: list[ResultLine], partner: BankingPartner) -> list[tuple[int, str]]:
    ids = [line.result.execution_id for line in lines]
    try:
        executions = executions_by_id(ids)
    except PynamoDBException:
        raise ServiceUnavailable(
            "The executions store (DynamoDB) is unavailable; nothing was applied. "
            "Try again shortly.",
            code="store_unavailable",
        ) from None
    recorded = recorded_results(ids)
    bad = []
    for line in lines:
        result = line.result
        item = executions.get(result.execution_id)
        if item is None or item.partner_code != partner.code:
            bad.append((line.number, f"No execution {result.execution_id} for {partner}."))
            continue
        before = recorded.get(result.execution_id)
        if before and before != (result.status, result.return_code):
            already = f"{result.execution_id} already has the result {before[0]} {before[1]}"
            bad.append((line.number, already.strip() + "."))
    return bad
