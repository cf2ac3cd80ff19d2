import datetime

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from accounts.models import Branch
from core.errors import ApplicationError
from reconciliation.services import dcr_build_range


def _date(text: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"not a date (YYYY-MM-DD): {text!r}") from None


class Command(BaseCommand):
    help = (
        "Build (or refresh) the DCRs of a business date or a range, for one branch or every "
        "active branch. Re-running gives the same figures; a submitted or approved DCR is "
        "never rewritten (what differs is recorded as late arrivals)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--date", required=True, help="business date, YYYY-MM-DD")
        parser.add_argument("--to", help="last business date of a range, YYYY-MM-DD")
        parser.add_argument("--branch", help="branch code (default: every active branch)")

    def handle(self, *args, date: str, to: str | None, branch: str | None, **options):
        date_from = _date(date)
        date_to = _date(to) if to else date_from
        if date_to < date_from:
            raise CommandError("--to is before --date")
        branch_ids = None
        if branch:
            found = Branch.objects.filter(code=branch.strip().upper()).values_list("pk", flat=True)
            if not found:
                raise CommandError(f"no branch with code {branch!r}")
            branch_ids = list(found)
        days = (date_to - date_from).days + 1
        count = len(branch_ids) if branch_ids else Branch.objects.filter(is_active=True).count()
        with tqdm(total=count * days, unit="DCR", disable=options["verbosity"] == 0) as bar:
            try:
                report = dcr_build_range(
                    date_from=date_from,
                    date_to=date_to,
                    branch_ids=branch_ids,
                    on_done=lambda *_: bar.update(),
                )
            except ApplicationError as exc:
                raise CommandError(str(exc)) from None
        for (branch_id, day), exc in sorted(report.failed.items()):
            self.stderr.write(f"error: branch {branch_id} {day}: {str(exc).splitlines()[0]}")
        self.stdout.write(
            f"{report.written} DCR(s) written, {report.frozen} submitted or approved left as "
            f"they are ({report.late_arrivals} new late arrival(s)), "
            f"{report.transactions} transaction(s) read, {len(report.failed)} failed"
        )
        if report.failed:
            raise CommandError(f"{len(report.failed)} DCR(s) could not be built")
