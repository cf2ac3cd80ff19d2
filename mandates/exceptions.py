"""The mandates app's refusals, as the API and the admin show them."""

from core.errors import ApplicationError


class MandateError(ApplicationError):
    code = "mandate_error"


class ResultRejected(ApplicationError):
    code = "invalid_result"


class ResponseFileRejected(ApplicationError):
    """A partner's response file that cannot be applied: the file itself (``lines`` empty)
    or some of its lines, each ``(number, message)``; then nothing is applied."""

    code = "invalid_response_file"

    def __init__(self, message: str, *, lines: list[tuple[int, str]] | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.lines = lines or []
