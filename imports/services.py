"""The import engine: a file of one kind, streamed row by row, each row validated and
written by its importer (``imports.importers``) in its own savepoint, committed with its
result a chunk at a time.

- Nothing half-written: a row is written whole (a loan with its schedule) or not at all.
- Idempotent: importers find rows by natural key; a second run of the same file reports
  its rows as unchanged.
- Resumable: a real run is an ``ImportRun`` with the file's SHA-256 and the last line
  committed; starting the same kind and file again while a run is unfinished goes on after
  that line (one process at a time: ``core.jobs``' lease; a dead process's run is taken
  over when its lease runs out).
- Dry run: every row is validated and written in a savepoint that is then rolled back, so
  it sees what the import would do and leaves nothing of it; only the run and its results
  are kept (the admin's preview).
- Scoped: the importer refuses a row of a branch the actor does not see.
- One audit event for a real run, with its counts.
"""

from __future__ import annotations

import datetime
import hashlib
import io
from collections.abc import Callable, Iterator
from typing import BinaryIO

from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from audit.services import audit_record
from core.bulk import copy_rows, model_columns, model_values
from core.errors import ApplicationError
from core.jobs import job_claim, job_finish, job_heartbeat, job_held_for
from core.tabular import FileRow, TableRejected, open_table
from core.workflow import require_permission

from .exceptions import ImportBusy, ImportRefused, RowRefused
from .importers import IMPORTERS
from .importers.base import Importer, first_error
from .models import ImportRowResult, ImportRun

IMPORT_JOB = "imports.run"
IMPORT_LEASE = datetime.timedelta(minutes=5)
IMPORT_PERMISSION = "imports.add_importrun"
CHUNK = 200  # rows a transaction (unless the importer says): results and last line with them
Status = ImportRowResult.Status
RESULT_COLUMNS = model_columns(ImportRowResult)[1:]  # all but the id


class _DryRun(Exception):
    """Raised inside a row's savepoint to roll back what a dry run wrote."""

    def __init__(self, status: str) -> None:
        self.status = status


def importer_for(kind: str, actor) -> Importer:
    importer_class = IMPORTERS.get(kind)
    if importer_class is None:
        raise ImportRefused(f"Unknown kind {kind!r}: use one of {', '.join(IMPORTERS)}.")
    if actor is not None:
        require_permission(actor, IMPORT_PERMISSION, "You may not import data.")
    elif importer_class.needs_actor:
        raise ImportRefused(f"A {kind} import needs the user it is made by (--as).")
    return importer_class(actor=actor)


def file_sha256(source: BinaryIO) -> str:
    digest = hashlib.sha256()
    for block in iter(lambda: source.read(1 << 20), b""):
        digest.update(block)
    source.seek(0)
    return digest.hexdigest()


def import_run(
    *,
    kind: str,
    file_name: str,
    source: BinaryIO,
    actor,
    dry_run: bool = False,
    run: ImportRun | None = None,
    progress: Callable[[int], None] | None = None,
    schedule: tuple[str, BinaryIO] | None = None,
    keep: tuple[bytes, bytes | None] | None = None,
) -> ImportRun:
    """Import ``source`` (a binary file object, seekable) as rows of ``kind``. Without
    ``run``: a dry run starts a new run; a real one resumes the unfinished run of the same
    kind and file, or starts one. ``progress`` is called with each line done. ``schedule``
    (name, file): the loans' own schedules, a second file (``loans`` only); ``keep``: the
    files' bytes, stored with a new run (the admin's uploads). Raises
    ``ImportRefused`` (nothing written) for a kind, file or actor refused as a whole, and
    ``ImportBusy`` while another process imports the same file."""
    importer = importer_for(kind, actor)
    sha256 = file_sha256(source)
    if schedule is not None:
        if not importer.takes_schedule:
            raise ImportRefused(f"A {kind} import takes no schedule file.")
        sha256 = hashlib.sha256(f"{sha256}:{file_sha256(schedule[1])}".encode()).hexdigest()
    try:
        table = open_table(name=file_name, source=source, columns=importer.columns())
    except TableRejected as exc:
        raise ImportRefused(exc.message) from None
    if run is None:
        run = _run_for(kind, file_name, table.file_format, sha256, actor, dry_run)
        if schedule is not None and not run.schedule_file_name:
            run.schedule_file_name = schedule[0][:200]
        if keep is not None and run.content is None:
            run.content, run.schedule_content = keep
        run.save(update_fields=["schedule_file_name", "content", "schedule_content"])
    if run.dry_run:
        return _import_rows(run, importer, table.rows, progress, job=None, schedule=schedule)
    job = job_claim(name=IMPORT_JOB, key=str(run.pk), lease=IMPORT_LEASE)
    if job is None:
        raise ImportBusy(f"{run} is being imported by another process; try again later.")
    try:
        run = _import_rows(run, importer, table.rows, progress, job=job, schedule=schedule)
    except BaseException as exc:
        ImportRun.objects.filter(pk=run.pk).update(error=f"{type(exc).__name__}: {exc}"[:2000])
        job_finish(job, error=f"{type(exc).__name__}: {exc}")
        raise
    job_finish(job, counts=run.counts)
    return run


def _run_for(kind, file_name, file_format, sha256, actor, dry_run) -> ImportRun:
    fields = {
        "kind": kind,
        "file_name": file_name[:200],
        "file_format": file_format,
        "sha256": sha256,
        "actor": actor,
        "branch_id": actor.home_branch_id if actor is not None else None,
        "dry_run": dry_run,
    }
    if dry_run:
        return ImportRun.objects.create(**fields)
    unfinished = {"kind": kind, "sha256": sha256, "dry_run": False}
    for _attempt in range(2):
        run = ImportRun.objects.filter(status=ImportRun.Status.RUNNING, **unfinished).first()
        if run is not None:
            return run
        try:
            with transaction.atomic():
                return ImportRun.objects.create(**fields)
        except IntegrityError:
            continue  # another process started it this moment: resume theirs
    raise ImportBusy("The same file is being started by another process; try again.")


def _import_rows(
    run, importer, rows: Iterator[FileRow], progress, *, job, schedule=None
) -> ImportRun:
    chunk: list[FileRow] = []
    size = importer.chunk_rows or CHUNK
    try:
        importer.prepare(run, schedule)
        for row in rows:
            if row.number <= run.last_line:
                continue  # committed by an earlier attempt of this run
            chunk.append(row)
            if len(chunk) >= size:
                _commit_chunk(run, importer, chunk, progress, job)
                chunk = []
        if chunk:
            _commit_chunk(run, importer, chunk, progress, job)
    except TableRejected as exc:  # a broken line after the header: stop where it is
        raise ImportRefused(f"{exc.message} (after line {run.last_line})") from None
    return _finish(run, importer)


def _commit_chunk(run: ImportRun, importer: Importer, chunk: list[FileRow], progress, job):
    with transaction.atomic():
        results = _chunk_results(run, importer, chunk)
        if results is None:
            results = [_row_result(run, importer, row) for row in chunk]
        copy_rows(ImportRowResult, RESULT_COLUMNS, (model_values(r)[1:] for r in results))
        for result in results:
            field = result.status.lower()
            setattr(run, field, getattr(run, field) + 1)
        run.total += len(results)
        run.last_line = chunk[-1].number
        run.save(update_fields=["last_line", *ImportRun.COUNTS])
        if job is not None:
            job_heartbeat(job, progress={"last_line": run.last_line})
    if progress is not None:
        progress(len(chunk))


def _chunk_results(run: ImportRun, importer: Importer, chunk: list[FileRow]):
    """The chunk's results by the importer's set-based path (in a savepoint, rolled back
    for a dry run), or None: the importer has none, a row would be refused, or a row was
    written meanwhile by someone else (a constraint): then the chunk goes row by row."""
    try:
        with transaction.atomic():
            statuses = importer.import_chunk(chunk)
            if statuses is not None and run.dry_run:
                raise _DryRun(statuses)
    except _DryRun as rolled_back:
        statuses = rolled_back.status
    except IntegrityError:
        return None
    if statuses is None:
        return None
    return [
        _result(run, importer, row, status, "", "")
        for row, status in zip(chunk, statuses, strict=True)
    ]


def _row_result(run: ImportRun, importer: Importer, row: FileRow) -> ImportRowResult:
    field = reason = ""
    try:
        with transaction.atomic():
            status = importer.import_row(row.cells)
            if run.dry_run:
                raise _DryRun(status)
    except _DryRun as rolled_back:
        status = rolled_back.status
    except RowRefused as refused:
        status, field, reason = Status.REFUSED, refused.field, refused.reason
    except ValidationError as exc:
        refused = first_error(exc)
        status, field, reason = Status.REFUSED, refused.field, refused.reason
    except ApplicationError as exc:  # a service's refusal
        status, field, reason = Status.REFUSED, exc.field or "", exc.message
    except IntegrityError as exc:  # a row written meanwhile by someone else, a constraint
        status, reason = Status.REFUSED, f"The database refused the row: {exc}"
    except DatabaseError:
        raise
    return _result(run, importer, row, status, field, reason)


def _result(run, importer, row: FileRow, status, field: str, reason: str) -> ImportRowResult:
    if isinstance(status, tuple):  # (status, a note for the result file)
        status, reason = status
    return ImportRowResult(
        run=run,
        line=row.number,
        key=importer.key_of(row.cells),
        status=status,
        field=field[:60],
        reason=reason[:500],
    )


@transaction.atomic
def _finish(run: ImportRun, importer: Importer) -> ImportRun:
    importer.finish(run)
    run.status = ImportRun.Status.DONE
    run.finished_at = timezone.now()
    run.error = ""
    run.save(update_fields=["status", "finished_at", "error"])
    if not run.dry_run:
        audit_record(
            instance_or_entity=run,
            action="transition",
            changes={
                "status": [ImportRun.Status.RUNNING, ImportRun.Status.DONE],
                **{name: [None, value] for name, value in run.counts.items()},
            },
            remarks=f"{run.kind} from {run.file_name} (sha256 {run.sha256[:12]}…)",
            actor=run.actor,
        )
    return run


def import_results(run: ImportRun) -> Iterator[tuple[int, str, str, str, str]]:
    """Every row's result, by line: (line, status, key, field, reason)."""
    rows = run.results.order_by("line").values_list("line", "status", "key", "field", "reason")
    yield from rows.iterator(chunk_size=5000)


# --- The admin's uploads: a preview (a dry run of the stored file), then the import as a task


ADMIN_MAX_BYTES = 10 * 1024 * 1024
ADMIN_MAX_ROWS = 10_000


def import_preview(
    *,
    kind: str,
    file_name: str,
    content: bytes,
    actor,
    schedule: tuple[str, bytes] | None = None,
) -> ImportRun:
    """Store an uploaded file and dry-run it: every row's result, nothing of them written.
    Raises ``ImportRefused`` (nothing stored) for a file refused as a whole, or larger than
    the screen takes (``ADMIN_MAX_BYTES``, ``ADMIN_MAX_ROWS``: use ``import_data``)."""
    importer = importer_for(kind, actor)
    for content_of in filter(None, (content, schedule and schedule[1])):
        if len(content_of) > ADMIN_MAX_BYTES:
            raise ImportRefused(
                f"The file is larger than {ADMIN_MAX_BYTES // 1024 // 1024} MB: "
                "import it with the import_data command."
            )
    try:
        table = open_table(name=file_name, source=io.BytesIO(content), columns=importer.columns())
        rows = sum(1 for _ in table.rows)
    except TableRejected as exc:
        raise ImportRefused(exc.message) from None
    if rows > ADMIN_MAX_ROWS:
        raise ImportRefused(
            f"The file has {rows:,} rows; the screen takes {ADMIN_MAX_ROWS:,}: split it, or "
            "import it with the import_data command."
        )
    schedule_file = (schedule[0], io.BytesIO(schedule[1])) if schedule else None
    return import_run(
        kind=kind,
        file_name=file_name,
        source=io.BytesIO(content),
        actor=actor,
        dry_run=True,
        schedule=schedule_file,
        keep=(content, schedule[1] if schedule else None),
    )


def import_start(*, preview_id: int, actor) -> ImportRun:
    """Import the file of a preview (a task does it): its unfinished run when there is one
    (resumed), else a new run. Refused when the preview is not the actor's to see."""
    from .selectors import import_runs_for  # the selectors read through these services

    preview = import_runs_for(actor).get(pk=preview_id, dry_run=True)
    importer_for(preview.kind, actor)
    run = _run_for(
        preview.kind, preview.file_name, preview.file_format, preview.sha256, actor, False
    )
    if run.content is None:
        run.content = preview.content
        run.schedule_content = preview.schedule_content
        run.schedule_file_name = preview.schedule_file_name
    run.expected_rows = preview.total
    run.save(update_fields=["content", "schedule_content", "schedule_file_name", "expected_rows"])
    from .tasks import import_run_task

    import_run_task.delay_on_commit(run.pk)
    return run


def import_continue(*, run_id: int) -> ImportRun | None:
    """Go on with a stored run (the task): None when it is done, or another worker has it."""
    run = ImportRun.objects.select_related("actor").get(pk=run_id)
    if run.status == ImportRun.Status.DONE or run.content is None:
        return None
    schedule = None
    if run.schedule_content is not None:
        schedule = (run.schedule_file_name, io.BytesIO(run.schedule_content))
    try:
        return import_run(
            kind=run.kind,
            file_name=run.file_name,
            source=io.BytesIO(run.content),
            actor=run.actor,
            run=run,
            schedule=schedule,
        )
    except ImportBusy:
        return None


def import_held(run: ImportRun) -> bool:
    """Whether a worker is at the run now (else an unfinished run waits to be resumed)."""
    return job_held_for(name=IMPORT_JOB, key=str(run.pk)) is not None
