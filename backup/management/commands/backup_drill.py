from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from backup import BackupError
from backup.schedule import backup_drill


class Command(BaseCommand):
    help = (
        "Restore drill: restore the newest backup of BACKUP_DIRECTORY (or the one given) into "
        "a new scratch database on the same PostgreSQL server and a new DynamoDB table "
        "prefix, compare every table's row count and checksum with its manifest, then drop "
        "the scratch database and tables. Exit status 1 when the backup cannot be restored "
        "or differs."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "directory", nargs="?", type=Path, help="a backup directory (default: the newest)"
        )

    def handle(self, *args, directory, **options):
        try:
            source, result = backup_drill(source=directory, report=self.stdout.write)
        except BackupError as exc:
            raise CommandError(str(exc)) from None
        for line in result.differences:
            self.stdout.write(line)
        if not result.ok:
            raise CommandError(
                f"drill of {source} FAILED: {len(result.differences)} difference(s) listed "
                "above; the scratch database and tables are dropped"
            )
        self.stdout.write(
            f"drill of {source} passed: {result.pg_tables} PostgreSQL tables "
            f"({result.pg_rows} rows) and {result.dynamo_tables} DynamoDB tables "
            f"({result.dynamo_items} items) restored and verified; scratch copies dropped"
        )
