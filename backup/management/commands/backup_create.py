import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from backup import BackupError
from backup.services import backup_create


class Command(BaseCommand):
    help = (
        "Back up PostgreSQL (pg_dump of one snapshot, with every table's row count and "
        "checksum) and every DynamoDB table (parallel consistent Scans, one gzipped JSON-lines "
        "file per table) into a new directory with a manifest.json. DynamoDB is read right "
        "after the PostgreSQL snapshot; the manifest records the window between them."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--output",
            type=Path,
            help="the backup directory to write: new or empty "
            "(default .local/backups/backup-<UTC time> in the project)",
        )
        parser.add_argument(
            "--segments",
            type=int,
            default=4,
            help="parallel Scan segments per DynamoDB table (default %(default)s)",
        )

    def handle(self, *args, output, segments, **options):
        if not 1 <= segments <= 64:
            raise CommandError("--segments must be between 1 and 64")
        show = sys.stderr.isatty()
        try:
            path, manifest = backup_create(
                output=output,
                segments=segments,
                progress=lambda desc, total: tqdm(
                    desc=desc, total=total, unit="items", disable=not show, file=sys.stderr
                ),
            )
        except BackupError as exc:
            raise CommandError(str(exc)) from None
        pg_tables = manifest["postgres"]["tables"]
        ddb_tables = manifest["dynamodb"]["tables"]
        window = manifest["window"]
        self.stdout.write(
            f"postgres: {len(pg_tables)} tables, "
            f"{sum(t['rows'] for t in pg_tables.values())} rows "
            f"(snapshot {manifest['postgres']['snapshot_at']}, "
            f"WAL {manifest['postgres']['wal_lsn']})"
        )
        self.stdout.write(
            f"dynamodb: {len(ddb_tables)} tables, "
            f"{sum(t['items'] for t in ddb_tables.values())} items "
            f"(scanned until {manifest['dynamodb']['scan_finished_at']})"
        )
        self.stdout.write(f"backup written to {path} (window {window['from']} .. {window['to']})")
