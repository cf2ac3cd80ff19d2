"""An import run: one file of one kind brought in by one person (or the system), its
counts, the last line committed (where a resumed run goes on), and every row's result."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class ImportRun(models.Model):
    """Seen by its actor, and in the branch scope of the actor's branch (a branch user's
    runs by their managers; head office sees every run)."""

    SCOPE_BRANCH_PATH = "branch"

    class Status(models.TextChoices):
        RUNNING = "RUNNING", "Running"
        DONE = "DONE", "Done"
        FAILED = "FAILED", "Failed"

    kind = models.CharField(max_length=20)
    file_name = models.CharField(max_length=200)
    file_format = models.CharField(max_length=4, blank=True)  # CSV or XLSX
    sha256 = models.CharField(max_length=64)  # of the file (and its schedule file, if any)
    schedule_file_name = models.CharField(max_length=200, blank=True)
    dry_run = models.BooleanField(default=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    branch = models.ForeignKey(
        "accounts.Branch", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(max_length=8, choices=Status, default=Status.RUNNING)
    # where a resumed run goes on: every row up to this line is committed with its result
    last_line = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    refused = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    # an upload's files (the admin's; a command reads its files where they lie)
    content = models.BinaryField(null=True, blank=True, editable=False)
    schedule_content = models.BinaryField(null=True, blank=True, editable=False)
    # the rows the file has (known from its preview): the progress bar's end
    expected_rows = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    COUNTS = ("total", "created", "updated", "unchanged", "refused")

    class Meta:
        ordering = ["-id"]
        constraints = [
            # one unfinished real run a file: a second start resumes it
            models.UniqueConstraint(
                fields=["kind", "sha256"],
                condition=Q(status="RUNNING", dry_run=False),
                name="import_one_unfinished_run_a_file",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} import {self.pk} ({self.file_name})"

    @property
    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.COUNTS}

    @property
    def percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        return min(100, self.total * 100 // self.expected_rows) if self.expected_rows else 0


class ImportRowResult(models.Model):
    class Status(models.TextChoices):
        CREATED = "CREATED", "Created"
        UPDATED = "UPDATED", "Updated"
        UNCHANGED = "UNCHANGED", "Unchanged"
        REFUSED = "REFUSED", "Refused"

    run = models.ForeignKey(ImportRun, on_delete=models.CASCADE, related_name="results")
    line = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status)
    key = models.CharField(max_length=60, blank=True)  # the row's natural key
    field = models.CharField(max_length=60, blank=True)
    reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["run", "line"]
        constraints = [
            models.UniqueConstraint(fields=["run", "line"], name="import_result_line_once")
        ]

    def __str__(self) -> str:
        return f"line {self.line}: {self.status}"


class ImportScheduleLine(models.Model):
    """A line of a loans import's schedule file, staged in Postgres for the run (so that a
    loan finds its instalments whatever the files' order, and memory stays flat); deleted
    when the run is done. ``error`` says why a line cannot be read."""

    run = models.ForeignKey(ImportRun, on_delete=models.CASCADE, related_name="+")
    loan_number = models.CharField(max_length=20)
    line = models.PositiveIntegerField()
    number = models.PositiveSmallIntegerField(null=True)
    due_date = models.DateField(null=True)
    principal_due = models.DecimalField(max_digits=14, decimal_places=2, null=True)
    interest_due = models.DecimalField(max_digits=14, decimal_places=2, null=True)
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        indexes = [models.Index(fields=["run", "loan_number"], name="import_schedule_loan")]

    def __str__(self) -> str:
        return f"{self.loan_number} #{self.number}"
