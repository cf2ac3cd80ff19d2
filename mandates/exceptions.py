"""The mandates app's refusals, as the API and the admin show them."""

from core.errors import ApplicationError


class MandateError(ApplicationError):
    code = "mandate_error"


class ResultRejected(ApplicationError):
    code = "invalid_result"
