from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from dynamo import registry, tables


class Command(BaseCommand):
    help = "Create (idempotently, with indexes and TTL), describe or delete every DynamoDB table."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["create", "describe", "delete"])
        parser.add_argument(
            "--yes", action="store_true", help="confirm deletion (required for delete)"
        )

    def handle(self, *args, action: str, yes: bool, **options):
        where = settings.DYNAMODB_ENDPOINT or f"AWS {settings.DYNAMODB_REGION}"
        if action == "delete" and not yes:
            raise CommandError(
                f"delete drops every table with prefix {settings.DYNAMODB_TABLE_PREFIX!r} "
                f"at {where}; add --yes to confirm"
            )
        operation = {
            "create": tables.ensure_table,
            "describe": tables.describe_table,
            "delete": tables.delete_table,
        }[action]
        for model in registry.models():
            report = operation(model)
            line = f"{report.name}: {report.action}"
            self.stdout.write(f"{line} ({report.detail})" if report.detail else line)
        self.stdout.write(
            f"{len(registry.models())} tables, prefix {settings.DYNAMODB_TABLE_PREFIX!r}, {where}"
        )
