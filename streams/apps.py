from django.apps import AppConfig


class StreamsConfig(AppConfig):
    name = "streams"
    verbose_name = "DynamoDB Streams"

    def ready(self) -> None:
        from core.metrics import register_collector

        from .metrics import StreamLagCollector

        register_collector(StreamLagCollector())
