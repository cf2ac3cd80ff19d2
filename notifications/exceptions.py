"""Domain errors of the notifications app. Every one is a ``NotificationError``."""


class NotificationError(Exception):
    """Base of every notifications error: catch this to tolerate any notification failure."""


class TemplateNotFound(NotificationError):
    """No template with this code for this channel."""


class TemplateRenderError(NotificationError):
    """A template failed to render: bad syntax, a missing placeholder, a float amount."""


class InvalidRecipient(NotificationError):
    """The recipient is not a valid address for the channel (email, Indian mobile, token)."""


class NotificationNotFound(NotificationError):
    """No such notification, or it has expired."""


class NotificationNotRetryable(NotificationError):
    """Only a FAILED notification can be retried."""


class NotificationStoreUnavailable(NotificationError):
    """DynamoDB could not be reached; the caller may retry later."""


class ChannelError(NotificationError):
    """A channel or provider could not send now (transient): the sender retries with backoff."""


class PermanentChannelError(ChannelError):
    """The provider refused the message for good (e.g. recipient rejected): no retry."""
