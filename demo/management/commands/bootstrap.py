import argparse
import os

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from tqdm import tqdm

from demo import services as demo

ADMIN_USERNAME = "admin"
LOGINS_INDENT = " " * len("  Logins: ")  # bin/run prints the first line after that label


def admin_password() -> str:
    return os.environ.get("BACKOFFICE_ADMIN_PASSWORD", "Admin@12345")


def demo_data_wanted() -> bool:
    return os.environ.get("BACKOFFICE_DEMO_DATA", "1").strip().lower() not in {
        "0", "false", "no", "off",
    }  # fmt: skip


class Command(BaseCommand):
    help = (
        "First-run set-up of a development system: the admin login, and the demo data set "
        "(demo_data) when no demo branch exists yet; --no-demo-data or BACKOFFICE_DEMO_DATA=0 "
        "skips it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--print-logins", action="store_true", help="only print the logins")
        parser.add_argument(
            "--no-demo-data", action="store_true", help="do not load the demo data set"
        )
        parser.add_argument("--demo-scale", type=float, default=1.0, help=argparse.SUPPRESS)

    def handle(self, *args, print_logins: bool, no_demo_data: bool, demo_scale: float, **options):
        if print_logins:
            self._print_logins(first="", rest=LOGINS_INDENT)
            return
        User = get_user_model()
        if User.objects.filter(username=ADMIN_USERNAME).exists():
            self.stdout.write(f"admin login {ADMIN_USERNAME!r} exists")
        else:
            User.objects.create_superuser(
                username=ADMIN_USERNAME, email="admin@backoffice.example", password=admin_password()
            )
            self.stdout.write(f"created admin login {ADMIN_USERNAME!r}")
        if no_demo_data or not demo_data_wanted():
            return
        first_run = not demo.demo_present()
        if first_run:
            self.stdout.write("first run: loading the demo data set (manage.py demo_data)")
            call_command(
                "demo_data",
                scale=demo_scale,
                verbosity=options["verbosity"],
                stdout=self.stdout,
                stderr=self.stderr,
            )
        if not demo.demo_activity_present():
            self._activity(verbosity=options["verbosity"])
        if first_run:
            self.stdout.write("logins:")
            self._print_logins(first="  ", rest="  ")

    def _activity(self, *, verbosity: int) -> None:
        """Mandates, a NACH presentation, payments, DCRs, deposits and a statement, through
        the services (once: a later bootstrap finds them done)."""
        steps = ["mandates", "NACH presentation", "payments", "DCRs, deposits and a statement"]
        with tqdm(total=len(steps), desc="demo activity", disable=verbosity < 1) as bar:

            def step(name: str) -> None:
                if bar.n < bar.total and name != steps[0]:
                    bar.update(1)
                bar.set_postfix_str(name)

            result = demo.ensure_demo_activity(progress=step)
            bar.update(bar.total - bar.n)
        if result.ran:
            made = ", ".join(f"{n} {state.lower()}" for state, n in sorted(result.mandates.items()))
            self.stdout.write(
                f"demo activity: mandates ({made or 'none'}); {result.presented} NACH debits "
                f"presented ({result.bounced} bounced); {result.payments} payments "
                f"({result.posted} posted); {result.dcrs} DCRs; {result.deposits} deposits; "
                f"a statement of {result.statement_lines} lines"
            )

    def _print_logins(self, *, first: str, rest: str) -> None:
        """The admin login, then one line per demo role (when the demo set is loaded)."""
        self.stdout.write(f"{first}{ADMIN_USERNAME} / {admin_password()} (superuser)")
        for line in demo.demo_login_lines():
            self.stdout.write(f"{rest}{line}")
