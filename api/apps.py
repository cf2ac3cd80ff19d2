from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "API"

    def ready(self) -> None:
        from django.db.models.signals import m2m_changed

        from audit.tracking import track
        from refdata import cache as refdata

        from . import schema  # noqa: F401 - registers the Api-Key OpenAPI extension
        from .models import ApiClient
        from .selectors import API_CLIENTS, api_clients_changed

        # a client cached by authentication is read again from the next request after a
        # change is committed (any process), at once in the changing transaction
        refdata.register(API_CLIENTS, "api.ApiClient")
        m2m_changed.connect(
            api_clients_changed,
            sender=ApiClient.allowed_branches.through,
            dispatch_uid="api:allowed_branches",
        )

        # the key hash is never recorded (a change shows as "***"); use is not a change
        track("api.ApiClient", secret=("key_hash",), exclude=("last_used_at",))
