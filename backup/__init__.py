"""Backup and restore of both stores: PostgreSQL and every DynamoDB table, for one moment.

A backup is a directory::

    manifest.json                      what, when, from where; row counts and checksums
    postgres.dump                      pg_dump custom format (compressed; pg_restore reads it)
    dynamodb/<table>.jsonl.gz          one item per line, in DynamoDB's typed JSON

``<table>`` is the table's name without the environment's prefix (``transactions``, not
``dev_transactions``), so a backup restores under any prefix. Items are written as the
DynamoDB API returns them (``{"amount_paise": {"N": "150000"}}``): numbers stay the exact
decimal text DynamoDB stores, never a float; binary values are base64, as on the wire.

**The moment, and how the two stores agree.** PostgreSQL gives an exact point in time;
DynamoDB has no snapshot across tables (nor, for a Scan, within one). So:

1. A REPEATABLE READ transaction on PostgreSQL exports its snapshot. ``pg_dump
   --snapshot`` dumps exactly that snapshot, and the row counts and checksums of every
   table are computed inside the same transaction: the dump and the manifest describe the
   same instant (its server time and WAL position are recorded).
2. Only then does the DynamoDB export start: a parallel Scan of every table with
   ``ConsistentRead=True``, so every write acknowledged before the snapshot is in the
   export. The manifest records when the scans started and finished: the window.

DynamoDB is therefore never behind PostgreSQL, and may be ahead by at most the window
(seconds for a small database; the scans of a large one take longer). What happened in the
window is either in the backup or recovered by the system's own idempotent flows after a
restore:

- a payment ingested in the window is in the export (transaction, idempotency key, queue
  item); if its queue item was not yet done, the posting queue posts it after the restore,
  and a posting already in the snapshot is found by its transaction id (never twice).
  A client that retries with the same Idempotency-Key gets the stored answer.
- an audit event committed to the outbox before the snapshot but relayed after it is in
  both; the relay writes it again, idempotent by event id.
- what cannot be recovered: a payment posted to the ledger after the snapshot but marked
  POSTED in DynamoDB before its table was scanned appears POSTED without its posting.
  ``payments_integrity`` over the business dates of the window lists such transactions.
  Keep the window short (back up at a quiet hour; more ``--segments``).

Items that DynamoDB's TTL has expired but not yet deleted are exported as they are; the
application's reads filter on expiry, and AWS deletes them again after a restore.

**Checksums.** Per DynamoDB table: the item count and a sum, modulo 2**256, of the SHA-256
of every item's canonical JSON (keys sorted, set members sorted): it does not depend on the
order a parallel Scan returns items in, so it needs no sorting and no memory. Per
PostgreSQL table: the row count and two 64-bit sums over the MD5 of each row's text (the
session's time zone, date, interval, float and bytea formats fixed), hashed with SHA-256.
Every file also has its SHA-256 in the manifest.

**Restore** goes into an empty environment: the configured PostgreSQL database (which
must exist; ``createdb`` it) and the configured DynamoDB table prefix. It checks every file
and checksum of the backup before it touches anything, refuses a target with data unless
told to replace it, restores PostgreSQL in one transaction (``pg_restore
--single-transaction``), creates the DynamoDB tables from the models (indexes and TTL
included) and writes the items back, then computes the checksums of what is now stored and
compares them with the manifest.
"""

from core.errors import ApplicationError


class BackupError(ApplicationError):
    """A backup or restore that cannot go on: one line for the operator."""

    code = "backup_error"
