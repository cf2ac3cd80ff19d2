"""The same processing as an AWS Lambda function instead of ``streams_process``.

An event source mapping on the table's stream hands Lambda batches of records, one shard
at a time and in order, and keeps the checkpoint itself (it moves on when the function
returns, and sends the batch again when it raises). The function applies the batch in one
PostgreSQL transaction; a batch sent twice changes nothing, because the source's ``apply``
is idempotent (for transactions: ``reconciliation.services.live``). Handler:
``streams.aws_lambda.handler``; see docs/streams.md.
"""

from __future__ import annotations

import os

_ready = False


def _setup() -> None:
    """Django, once per Lambda container (the settings come from its environment)."""
    global _ready
    if not _ready:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        import django

        django.setup()
        _ready = True


def handler(event: dict, context: object = None) -> dict:
    _setup()
    from django.db import transaction

    from .processor import close_stale_connections, normalize
    from .sources import source_for_arn

    records = [normalize(record) for record in event.get("Records", [])]
    if not records:
        return {"records": 0}
    close_stale_connections()  # a container lives on between invocations
    source = source_for_arn(records[0]["eventSourceARN"])
    with transaction.atomic():
        source.apply(records)
    return {"records": len(records), "source": source.name}
