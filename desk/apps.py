from django.apps import AppConfig


class DeskConfig(AppConfig):
    """The branch counter: collect a payment, hand over a receipt, the collection sheet."""

    name = "desk"
    verbose_name = "Branch desk"
