from core.errors import ApplicationError, Conflict


class CustomerChangeInvalid(ApplicationError):
    """A requested change of a customer's mobile, PAN or bank account is not valid (now):
    ``field`` names the form field to show it on."""

    code = "customer_change_invalid"


class CustomerChangeStale(Conflict):
    """What a change request replaces is no longer what the customer has."""

    code = "customer_change_stale"


class ChargeNotWaivable(ApplicationError):
    code = "charge_not_waivable"


class CollectionOfficerRefused(ApplicationError):
    code = "collection_officer_refused"
