from pynamodb.attributes import TTLAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from dynamo.registry import register


class UserSessionsIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "user_id"
        projection = KeysOnlyProjection()

    user_id = UnicodeAttribute(hash_key=True)


@register
class SessionItem(Model):
    """A Django session. ``expires_at`` is the TTL; reads also check it (TTL deletes late)."""

    class Meta:
        table_name = "sessions"

    session_key = UnicodeAttribute(hash_key=True)
    session_data = UnicodeAttribute()
    user_id = UnicodeAttribute(null=True)  # sparse: anonymous sessions are not in the index
    expires_at = TTLAttribute()
    updated_at = UTCDateTimeAttribute()

    by_user = UserSessionsIndex()
