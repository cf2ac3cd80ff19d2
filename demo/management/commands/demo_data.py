import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from demo import services as demo


class Command(BaseCommand):
    help = (
        "Load the demo data set of an Indian NBFC: 3 regions, 6 areas, 12 branches, 40 staff "
        f"in every role (password {demo.DEMO_PASSWORD}), 5 loan products, 2 banking partners; "
        f"and {demo.CUSTOMERS_PER_SCALE:,} customers and {demo.LOANS_PER_SCALE:,} loan accounts "
        "per unit of --scale, with repayment schedules for the first "
        f"{demo.SCHEDULE_SAMPLE:,} loans. Idempotent: what exists is kept, and only the "
        "customers and loans missing to reach the requested numbers are added. Bulk-loaded "
        "rows (COPY and bulk_create) bypass model signals and are not audited: the audit "
        "trail is for what staff change."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--scale",
            type=float,
            default=1.0,
            help=(
                f"multiplies the customers ({demo.CUSTOMERS_PER_SCALE:,}) and loans "
                f"({demo.LOANS_PER_SCALE:,}); --scale 167 gives 1,002,000 loans"
            ),
        )
        parser.add_argument(
            "--loans",
            type=int,
            help="the number of demo loans wanted (instead of --scale); customers 5/6 of it",
        )
        parser.add_argument(
            "--customers", type=int, help="the number of demo customers wanted (with --loans)"
        )
        parser.add_argument(
            "--schedules",
            type=int,
            default=demo.SCHEDULE_SAMPLE,
            help="build repayment schedules for the first N demo loans (default %(default)s)",
        )
        parser.add_argument("--seed", type=int, default=2026, help="random seed")

    def handle(self, *args, scale, loans, customers, schedules, seed, verbosity, **options):
        if scale <= 0:
            raise CommandError("--scale must be above 0")
        if loans is None:
            loans = round(demo.LOANS_PER_SCALE * scale)
            wanted_customers = round(demo.CUSTOMERS_PER_SCALE * scale)
        else:
            wanted_customers = round(loans * demo.CUSTOMERS_PER_SCALE / demo.LOANS_PER_SCALE)
        if customers is None:
            customers = wanted_customers
        if loans < 0 or customers < 0:
            raise CommandError("--loans and --customers cannot be negative")

        added = demo.ensure_master_data()
        if any(added.values()):
            self.stdout.write(
                "demo master data: added "
                + ", ".join(f"{n} {kind}" for kind, n in added.items() if n)
            )
        have = demo.demo_counts()
        add_customers = max(0, customers - have.customers)
        add_loans = max(0, loans - have.loans)
        if not add_customers and not add_loans:
            if not any(added.values()):
                self.stdout.write(
                    f"demo data already present: {have.customers:,} customers, "
                    f"{have.loans:,} loans (ask for more with --scale or --loans)"
                )
            return

        started = time.monotonic()
        with tqdm(
            total=add_customers + add_loans,
            desc="demo customers and loans",
            unit=" rows",
            unit_scale=True,
            disable=verbosity < 1,
        ) as bar:
            try:
                result = demo.load_customers_and_loans(
                    customers=add_customers,
                    loans=add_loans,
                    seed=seed,
                    schedule_sample=schedules,
                    progress=bar.update,
                )
            except ValueError as exc:
                raise CommandError(str(exc)) from None
        self.stdout.write(
            f"added {result.customers:,} customers (with {result.bank_accounts:,} bank "
            f"accounts), {result.loans:,} loans ({result.co_borrowers:,} co-borrowers; "
            f"{result.scheduled_loans:,} with schedules, {result.instalments:,} instalments) "
            f"in {time.monotonic() - started:.1f} s; now {have.customers + result.customers:,} "
            f"customers, {have.loans + result.loans:,} loans"
        )
