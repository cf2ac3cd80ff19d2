class AuditStoreUnavailable(Exception):
    """DynamoDB could not take audit events now; the outbox keeps them for a later relay."""
