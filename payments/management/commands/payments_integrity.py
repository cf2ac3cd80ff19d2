import contextlib
import sys
from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from accounts.models import Branch
from ops.db import replica_lag_seconds, reporting
from payments.integrity import integrity_check


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"not a date (YYYY-MM-DD): {value!r}") from None


class Command(BaseCommand):
    help = (
        "Compare DynamoDB's payment transactions with the ledger's postings, loan by loan, "
        "for a range of business dates. Prints every difference and a summary line; "
        "exit status 0 when they agree, 1 when they differ."
    )

    def add_arguments(self, parser):
        today = timezone.localdate().isoformat()
        parser.add_argument("--from", dest="start", default=today, help="first business date")
        parser.add_argument("--to", dest="end", default=None, help="last business date")
        parser.add_argument("--branch", action="append", help="branch code (repeatable)")
        parser.add_argument(
            "--grace-minutes",
            type=int,
            default=15,
            help="RECEIVED transactions younger than this are not yet expected to be posted",
        )
        parser.add_argument(
            "--primary",
            action="store_true",
            help="read the ledger from the primary database even when a read replica is "
            "configured (a replica a few seconds behind shows just-posted payments as missing)",
        )

    def handle(self, *args, start, end, branch, grace_minutes, primary, **options):
        start_day = _date(start)
        end_day = _date(end) if end else start_day
        if end_day < start_day:
            raise CommandError("--to is before --from")
        branches = None
        if branch:
            branches = list(Branch.objects.filter(code__in=branch))
            missing = set(branch) - {b.code for b in branches}
            if missing:
                raise CommandError(f"no branch {', '.join(sorted(missing))}")
        show_progress = sys.stderr.isatty()
        with contextlib.nullcontext("default") if primary else reporting() as alias:
            report = integrity_check(
                start=start_day,
                end=end_day,
                branches=branches,
                grace=timedelta(minutes=grace_minutes),
                progress=lambda it: tqdm(
                    it, desc="branch-days", disable=not show_progress, file=sys.stderr
                ),
            )
        for line in report.differences:
            self.stdout.write(line)
        verdict = "agree" if report.agrees else f"{len(report.differences)} loans differ"
        self.stdout.write(
            f"integrity {start_day}..{end_day}: {report.branch_days} branch-days, "
            f"{report.transactions} transactions, {report.postings} postings: {verdict}"
        )
        if not report.agrees:
            if alias != "default":
                lag = replica_lag_seconds(alias)
                behind = "" if lag is None else f", {lag:.1f} s behind"
                self.stderr.write(
                    f"note: the ledger was read from the read replica{behind}; "
                    "run again with --primary to rule out replication lag"
                )
            sys.exit(1)
