from django.apps import AppConfig


class DemoConfig(AppConfig):
    """bootstrap / demo_data: a development system with demo branches, loans and payments
    (tooling, not the product's domain)."""

    name = "demo"
    verbose_name = "Demo data"
