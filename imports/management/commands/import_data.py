import csv
import sys
from contextlib import ExitStack
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from accounts.models import User
from core.errors import ApplicationError
from core.spreadsheets import safe_text
from imports.importers import IMPORTERS
from imports.services import import_results, import_run

RESULT_HEADER = ["line", "status", "key", "field", "reason"]


class Command(BaseCommand):
    help = (
        "Import a CSV or Excel (.xlsx) file of one kind (branches, users, customers, loans, "
        "mandates; docs/imports.md). Each row is written whole or not at all; a second run "
        "of the same file changes nothing; an interrupted run resumes when started again on "
        "the same file. Writes a result file with every row's line, status, field and reason."
    )

    def add_arguments(self, parser):
        parser.add_argument("kind", choices=list(IMPORTERS))
        parser.add_argument("file", nargs="?", help="the CSV or .xlsx file")
        parser.add_argument(
            "--dry-run", action="store_true", help="validate every row and write nothing"
        )
        parser.add_argument(
            "--as", dest="username", help="the user the import is made by (their scope applies)"
        )
        parser.add_argument(
            "--result", help="where to write the result CSV (default: FILE.result.csv)"
        )
        parser.add_argument(
            "--schedule",
            help="loans only: a second file with the loans' own schedules (without it, or for "
            "a loan it does not list, the schedule is generated from the terms)",
        )
        parser.add_argument(
            "--template", action="store_true", help="print the kind's header row (CSV) and stop"
        )

    def handle(self, *args, kind, file, dry_run, username, result, template, verbosity, **opts):
        if template:
            csv.writer(self.stdout).writerow(IMPORTERS[kind].header())
            return
        if not file:
            raise CommandError("give the FILE to import")
        path = Path(file)
        schedule_path = Path(opts["schedule"]) if opts["schedule"] else None
        for given in filter(None, (path, schedule_path)):
            if not given.is_file():
                raise CommandError(f"{given}: no such file")
        actor = None
        if username:
            actor = User.objects.filter(username=username, is_active=True).first()
            if actor is None:
                raise CommandError(f"no active user {username!r}")
        result_path = Path(result) if result else path.with_name(f"{path.name}.result.csv")
        with ExitStack() as files:
            source = files.enter_context(path.open("rb"))
            schedule = None
            if schedule_path:
                schedule = (schedule_path.name, files.enter_context(schedule_path.open("rb")))
            run = self._run(kind, path, source, actor, dry_run, schedule, verbosity)
        with result_path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(RESULT_HEADER)
            for row in import_results(run):
                writer.writerow([safe_text(cell) for cell in row])
        counts = ", ".join(f"{name} {value:,}" for name, value in run.counts.items())
        what = "dry run, nothing written" if dry_run else "imported"
        self.stdout.write(f"{kind} {what}: {counts}; result in {result_path}")
        if run.refused:
            raise CommandError(f"{run.refused:,} row(s) refused: see {result_path}", returncode=2)

    def _run(self, kind, path, source, actor, dry_run, schedule, verbosity):
        with tqdm(
            desc=f"{kind}{' (dry run)' if dry_run else ''}", unit=" rows", unit_scale=True,
            disable=verbosity < 1, file=sys.stderr,
        ) as bar:  # fmt: skip
            try:
                return import_run(
                    kind=kind,
                    file_name=path.name,
                    source=source,
                    actor=actor,
                    dry_run=dry_run,
                    progress=bar.update,
                    schedule=schedule,
                )
            except ApplicationError as exc:
                raise CommandError(exc.message) from None
