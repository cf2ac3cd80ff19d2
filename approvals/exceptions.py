from core.errors import ApplicationError, Conflict


class MakerCannotCheck(ApplicationError):
    code = "maker_cannot_check"
    status = 403


class AlreadyDecided(Conflict):
    code = "already_decided"
