from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from dynamo import registry, tables
from dynamo import template as cfn


class Command(BaseCommand):
    help = (
        "Create (idempotently, with indexes and TTL; against AWS also point-in-time recovery, "
        "KMS encryption, tags and deletion protection), describe or delete every DynamoDB "
        "table, or write their CloudFormation template (with CloudWatch alarms)."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["create", "describe", "delete", "template"])
        parser.add_argument(
            "--yes", action="store_true", help="confirm deletion (required for delete)"
        )
        parser.add_argument(
            "--out",
            type=Path,
            help="template: the file to write (default: standard output); "
            "a .json name writes JSON, any other YAML",
        )
        parser.add_argument(
            "--format",
            choices=["yaml", "json"],
            help="template: the format (default: from --out's name, else yaml)",
        )

    def handle(self, *args, action: str, yes: bool, out, format, **options):
        if action == "template":
            self._template(out, format)
            return
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

    def _template(self, out: Path | None, fmt: str | None) -> None:
        fmt = fmt or ("json" if out is not None and out.suffix == ".json" else "yaml")
        text = cfn.render(cfn.template(), fmt)
        if out is None:
            self.stdout.write(text, ending="")
            return
        try:
            out.write_text(text)
        except OSError as exc:
            raise CommandError(f"cannot write {out}: {exc.strerror or exc}") from None
        self.stderr.write(f"template of {len(registry.models())} tables written to {out}")
