import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

ADMIN_USERNAME = "admin"


def admin_password() -> str:
    return os.environ.get("BACKOFFICE_ADMIN_PASSWORD", "Admin@12345")


class Command(BaseCommand):
    help = "First-run set-up of a development system: the admin login (and, later, demo data)."

    def add_arguments(self, parser):
        parser.add_argument("--print-logins", action="store_true", help="only print the logins")

    def handle(self, *args, print_logins: bool, **options):
        if print_logins:
            self.stdout.write(f"{ADMIN_USERNAME} / {admin_password()} (superuser)")
            return
        User = get_user_model()
        if User.objects.filter(username=ADMIN_USERNAME).exists():
            self.stdout.write(f"admin login {ADMIN_USERNAME!r} exists")
            return
        User.objects.create_superuser(
            username=ADMIN_USERNAME, email="admin@backoffice.example", password=admin_password()
        )
        self.stdout.write(f"created admin login {ADMIN_USERNAME!r}")
