import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from backup import BackupError
from backup.services import backup_restore


class Command(BaseCommand):
    help = (
        "Restore a backup of backup_create into this environment: the configured PostgreSQL "
        "database (create it first; it must hold no rows) and DynamoDB table prefix (its "
        "tables must hold no items; they are created from the models). Every file is checked "
        "against the manifest first; after the restore, every table's row count and checksum "
        "is compared with the manifest. Exit status 1 on any problem or difference."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory", type=Path, help="the backup directory")
        parser.add_argument(
            "--yes",
            action="store_true",
            help="restore even though the target holds data, replacing it: the dump's "
            "PostgreSQL objects are dropped and recreated, the DynamoDB tables emptied",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=8,
            help="parallel DynamoDB batch writers (default %(default)s)",
        )

    def handle(self, *args, directory, yes, workers, **options):
        if not 1 <= workers <= 64:
            raise CommandError("--workers must be between 1 and 64")
        show = sys.stderr.isatty()
        try:
            result = backup_restore(
                directory=directory,
                replace=yes,
                workers=workers,
                progress=lambda desc, total: tqdm(
                    desc=desc, total=total, unit="items", disable=not show, file=sys.stderr
                ),
                report=self.stdout.write,
            )
        except BackupError as exc:
            raise CommandError(str(exc)) from None
        for line in result.differences:
            self.stdout.write(line)
        if not result.ok:
            count = len(result.differences)
            raise CommandError(
                "the restored data differs from the backup "
                f"({count} {'difference' if count == 1 else 'differences'}, listed above)"
            )
        self.stdout.write(
            f"verified: {result.pg_tables} PostgreSQL tables ({result.pg_rows} rows) and "
            f"{result.dynamo_tables} DynamoDB tables ({result.dynamo_items} items) match the "
            "backup's counts and checksums"
        )
