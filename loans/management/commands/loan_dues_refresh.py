import time
from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Max
from django.utils import timezone
from tqdm import tqdm

from loans.models import LoanAccount
from loans.services import loans_dues_daily


class Command(BaseCommand):
    help = (
        "Refresh every active loan's dues (next due, arrears, DPD, bucket) as of a business "
        "date, today (IST) by default: what the nightly task does, run again for the date "
        "even when it is done. Refused while another worker holds the date's run."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--date",
            type=date.fromisoformat,
            help="the as-of date (YYYY-MM-DD); today in IST by default",
        )

    def handle(self, *args, date: date | None, verbosity: int, **options):
        as_of = date or timezone.localdate()
        last_id = LoanAccount.objects.aggregate(last=Max("id"))["last"] or 0
        started = time.monotonic()
        with tqdm(
            total=last_id, desc=f"dues as of {as_of:%d %b %Y}", unit=" ids", unit_scale=True,
            disable=verbosity < 1,
        ) as bar:  # fmt: skip
            run = loans_dues_daily(as_of=as_of, force=True, progress=bar.update)
        if run is None:
            raise CommandError(
                f"another worker is refreshing the dues as of {as_of:%d %b %Y}; try again later"
            )
        self.stdout.write(
            f"dues as of {as_of:%d %b %Y}: {run.counts.get('loans', 0):,} loans written in "
            f"{time.monotonic() - started:.1f} s"
        )
