"""What the stream processor reads, and what it does with each batch: one source per
DynamoDB table whose stream keeps something in PostgreSQL current."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pynamodb.models import Model

from payments.ddb_models import TransactionItem
from reconciliation.services import dcr_live_apply


@dataclass(frozen=True)
class Source:
    name: str
    model: type[Model]  # the table whose stream is read
    # Applies a batch of records (DynamoDB's record format); called inside the PostgreSQL
    # transaction that writes the shard's checkpoint, so it must not commit on its own.
    apply: Callable[[list[dict]], object]

    @property
    def table_name(self) -> str:
        return self.model.Meta.table_name


def _transactions_apply(records: list[dict]) -> object:
    return dcr_live_apply(records=records)


TRANSACTIONS = Source("transactions", TransactionItem, _transactions_apply)
SOURCES = {source.name: source for source in (TRANSACTIONS,)}


def source_for_arn(arn: str) -> Source:
    """The source of a stream ARN (``arn:aws:dynamodb:...:table/<name>/stream/<label>``)."""
    table = arn.split(":table/", 1)[-1].split("/stream/", 1)[0]
    for source in SOURCES.values():
        if source.table_name == table:
            return source
    raise LookupError(f"no stream source reads the table {table!r}")
