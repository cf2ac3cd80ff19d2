from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "API"

    def ready(self) -> None:
        from django.db.models.signals import m2m_changed, post_delete, post_save

        from audit.tracking import track

        from . import schema  # noqa: F401 - registers the Api-Key OpenAPI extension
        from .models import ApiClient
        from .selectors import api_clients_changed

        # a client cached by authentication is forgotten as soon as it changes
        for signal in (post_save, post_delete):
            signal.connect(api_clients_changed, sender=ApiClient, dispatch_uid=f"api:{signal}")
        m2m_changed.connect(
            api_clients_changed,
            sender=ApiClient.allowed_branches.through,
            dispatch_uid="api:allowed_branches",
        )

        # the key hash is never recorded (a change shows as "***"); use is not a change
        track("api.ApiClient", secret=("key_hash",), exclude=("last_used_at",))
