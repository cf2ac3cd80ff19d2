from core.errors import ApplicationError, Conflict


class ImportRefused(ApplicationError):
    """An import that cannot run at all (an unknown kind, a file that cannot be read, an
    importer the actor may not use): one message, nothing written."""

    code = "import_refused"


class ImportBusy(Conflict):
    """Another process is importing the same file now."""

    code = "import_busy"


class RowRefused(Exception):
    """One row cannot be imported: its field (a column key, or "" for the row) and why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field, self.reason = field, reason
