"""Bank statements: upload (refused when imported before) and match to deposits."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from decimal import Decimal

from django.db import IntegrityError, transaction

from core.templatetags.formats import ist, person
from core.workflow import require_permission
from loans.models import CollectionAccount

from ..exceptions import StatementAlreadyImported, StatementRejected
from ..models import Deposit, StatementLine, StatementUpload
from ..statements import statement_parse

ADD_STATEMENT = "reconciliation.add_statementupload"


STATEMENT_MAX_BYTES = 20 * 1024 * 1024


@transaction.atomic
def statement_upload(*, collection_account_id: int, file, actor) -> StatementUpload:
    """Import a statement CSV whole, or refuse it whole (``StatementRejected`` with every
    bad line), then match its credits to deposits."""
    require_permission(actor, ADD_STATEMENT, "You may not upload bank statements.")
    account = CollectionAccount.objects.filter(pk=collection_account_id).first()
    if account is None:
        raise StatementRejected("No such collection account.", errors=[])
    if file.size > STATEMENT_MAX_BYTES:
        raise StatementRejected(
            "The file is larger than 20 MB.", errors=[(1, "The file is larger than 20 MB.")]
        )
    data = file.read()
    digest = hashlib.sha256(data).hexdigest()
    _refuse_imported_before(account, digest)
    lines, errors = statement_parse(data)
    if errors:
        raise StatementRejected(
            f"The statement has {len(errors)} problem(s); nothing was imported.", errors=errors
        )
    name = (getattr(file, "name", "") or "").replace("\x00", "") or "statement.csv"
    try:
        with transaction.atomic():  # the unique constraint decides between concurrent uploads
            upload = StatementUpload.objects.create(
                collection_account=account,
                file_name=name[:200],
                content_sha256=digest,
                line_count=len(lines),
                first_date=min(line.txn_date for line in lines),
                last_date=max(line.txn_date for line in lines),
                uploaded_by=actor,
            )
    except IntegrityError:
        _refuse_imported_before(account, digest)
        raise
    StatementLine.objects.bulk_create(
        StatementLine(
            upload=upload,
            line_number=line.line_number,
            txn_date=line.txn_date,
            narration=line.narration,
            reference=line.reference,
            credit=line.credit,
        )
        for line in lines
    )
    statement_match(upload=upload)
    return upload


def _refuse_imported_before(account: CollectionAccount, digest: str) -> None:
    earlier = (
        StatementUpload.objects.filter(collection_account=account, content_sha256=digest)
        .select_related("uploaded_by")
        .first()
    )
    if earlier is not None:
        who = person(earlier.uploaded_by) if earlier.uploaded_by else "someone"
        raise StatementAlreadyImported(
            f"This file was already imported for {account}: {earlier.file_name}, "
            f"uploaded by {who} on {ist(earlier.uploaded_at)} "
            f"(statement #{earlier.pk}, {earlier.line_count} line(s)).",
            field="file",
        )


def statement_match(*, upload: StatementUpload) -> int:
    """Match the upload's unmatched lines to deposits of the same account not matched yet,
    by slip number and amount. Returns how many lines were matched."""
    lines = list(upload.lines.filter(matched_deposit__isnull=True).exclude(reference=""))
    if not lines:
        return 0
    candidates: dict[tuple[str, Decimal], list[Deposit]] = defaultdict(list)
    for deposit in Deposit.objects.filter(
        collection_account_id=upload.collection_account_id,
        slip_number__in={line.reference for line in lines},
        statement_line__isnull=True,
    ).order_by("deposit_date", "id"):
        candidates[(deposit.slip_number, deposit.amount)].append(deposit)
    matched = []
    for line in lines:
        pool = candidates.get((line.reference, line.credit))
        if pool:
            line.matched_deposit = pool.pop(0)
            matched.append(line)
    StatementLine.objects.bulk_update(matched, ["matched_deposit"])
    return len(matched)
