"""Domain errors of the notifications app. Every one is a ``NotificationError`` (and so an
``ApplicationError`` with a stable ``code``)."""

from core.errors import ApplicationError


class NotificationError(ApplicationError):
    """Base of every notifications error: catch this to tolerate any notification failure."""

    code = "notification_error"


class TemplateNotFound(NotificationError):
    """No template with this code for this channel."""

    code = "notification_template_not_found"


class TemplateRenderError(NotificationError):
    """A template failed to render: bad syntax, a missing placeholder, a float amount."""

    code = "notification_template_invalid"


class InvalidRecipient(NotificationError):
    """The recipient is not a valid address for the channel (email, Indian mobile, token)."""

    code = "invalid_recipient"


class NotificationNotFound(NotificationError):
    """No such notification, or it has expired."""

    code = "notification_not_found"
    status = 404


class NotificationNotRetryable(NotificationError):
    """Only a FAILED notification can be retried."""

    code = "notification_not_retryable"
    status = 409


class NotificationStoreUnavailable(NotificationError):
    """DynamoDB could not be reached; the caller may retry later."""

    code = "service_unavailable"
    status = 503


class ChannelError(NotificationError):
    """A channel or provider could not send now (transient): the sender retries with backoff."""

    code = "notification_channel_error"
    status = 503


class PermanentChannelError(ChannelError):
    """The provider refused the message for good (e.g. recipient rejected): no retry."""

    code = "notification_channel_refused"
    status = 422
