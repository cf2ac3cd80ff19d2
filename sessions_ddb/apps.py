from django.apps import AppConfig


class SessionsDdbConfig(AppConfig):
    name = "sessions_ddb"
    verbose_name = "Web sessions"
