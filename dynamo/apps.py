from django.apps import AppConfig


class DynamoConfig(AppConfig):
    name = "dynamo"
    verbose_name = "DynamoDB plumbing"

    def ready(self) -> None:
        from django.core.signals import setting_changed

        from . import registry

        registry.autodiscover()
        registry.configure_all()
        setting_changed.connect(registry.on_setting_changed)
