import os
import sys
from datetime import date
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from core.money import inr
from reconciliation.exceptions import LegacyExtractRejected
from reconciliation.legacy_compare import FIGURES, legacy_compare

BAD_INPUT = 2


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"not a date (YYYY-MM-DD): {value!r}", returncode=BAD_INPUT) from None


class Command(BaseCommand):
    help = (
        "The dual run: compare the legacy loan system's end-of-day extract (CSV or xlsx: "
        "loan_number, outstanding_principal, outstanding_interest, outstanding_charges, "
        "last_payment_date, dpd, and optionally branch_code) with this system's figures at "
        "the end of --date, loan by loan. Writes every difference to a result CSV and prints "
        "a summary per branch. Exit status 0 when they agree, 1 when they differ, 2 when the "
        "extract or an option is bad (one line on stderr). See docs/dual-run.md."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="the extract (.csv or .xlsx)")
        parser.add_argument(
            "--date", dest="as_of", help="the extract's date (YYYY-MM-DD); today in IST by default"
        )
        parser.add_argument(
            "--output",
            help="the result CSV (default: legacy-compare-DATE.csv in the current folder)",
        )

    def handle(self, *args, file: str, as_of: str | None, output: str | None, **options):
        day = _date(as_of) if as_of else timezone.localdate()
        source = Path(file)
        result = Path(output or f"legacy-compare-{day.isoformat()}.csv")
        partial = result.with_name(result.name + ".part")
        show = options["verbosity"] > 0 and sys.stderr.isatty()
        try:
            with (
                source.open("rb") as extract,
                partial.open("w", newline="", encoding="utf-8") as out,
                tqdm(desc="extract rows", unit=" rows", disable=not show) as reading,
                tqdm(desc="loans compared", unit=" loans", disable=not show) as comparing,
            ):
                report = legacy_compare(
                    file=extract,
                    name=source.name,
                    as_of=day,
                    out=out,
                    read_progress=reading.update,
                    compare_progress=comparing.update,
                    compare_total=lambda n: setattr(comparing, "total", n),
                )
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise CommandError(
                f"cannot read or write {exc.filename}: {exc.strerror}", returncode=BAD_INPUT
            ) from None
        except LegacyExtractRejected as exc:
            partial.unlink(missing_ok=True)
            raise CommandError(f"{source.name}: {exc}", returncode=BAD_INPUT) from None
        os.replace(partial, result)
        self._summary(report)
        verdict = "agree" if report.agrees else f"{report.differences:,} differences"
        self.stdout.write(
            f"compare_legacy {day}: {report.extract_rows:,} loans in the extract: {verdict}; "
            f"result in {result}"
        )
        if not report.agrees:
            sys.exit(1)

    def _summary(self, report) -> None:
        header = (
            f"{'branch':<10} {'compared':>9} {'agree':>9} {'differ':>9} {'only legacy':>11} "
            f"{'only here':>9}  {'principal (legacy - here)':>26}"
        )
        self.stdout.write(header)
        rows = sorted(report.branches.items())
        if len(rows) != 1:
            rows.append(("all", report.totals()))
        for branch, s in rows:
            self.stdout.write(
                f"{branch:<10} {s.compared:>9,} {s.agreeing:>9,} {s.differing:>9,} "
                f"{s.only_in_extract:>11,} {s.only_here:>9,}  {inr(s.principal_difference):>26}"
            )
        total = report.totals()
        if total.fields:
            self.stdout.write(
                "differing figures: "
                + ", ".join(
                    f"{name} {total.fields[name]:,}" for name in FIGURES if name in total.fields
                )
            )
