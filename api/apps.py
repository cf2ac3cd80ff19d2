from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "API"

    def ready(self) -> None:
        from audit.tracking import track

        from . import schema  # noqa: F401 - registers the Api-Key OpenAPI extension

        # the key hash is never recorded (a change shows as "***"); use is not a change
        track("api.ApiClient", secret=("key_hash",), exclude=("last_used_at",))
