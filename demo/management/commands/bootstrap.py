import argparse
import os

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

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
        if no_demo_data or not demo_data_wanted() or demo.demo_present():
            return
        self.stdout.write("first run: loading the demo data set (manage.py demo_data)")
        call_command(
            "demo_data",
            scale=demo_scale,
            verbosity=options["verbosity"],
            stdout=self.stdout,
            stderr=self.stderr,
        )
        self.stdout.write("logins:")
        self._print_logins(first="  ", rest="  ")

    def _print_logins(self, *, first: str, rest: str) -> None:
        """The admin login, then one line per demo role (when the demo set is loaded)."""
        self.stdout.write(f"{first}{ADMIN_USERNAME} / {admin_password()} (superuser)")
        for line in demo.demo_login_lines():
            self.stdout.write(f"{rest}{line}")
