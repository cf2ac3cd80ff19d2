from django.apps import AppConfig


class DeskConfig(AppConfig):
    """The branch counter: collect a payment, hand over a receipt, the collection sheet."""

    name = "desk"
    verbose_name = "Branch desk"

    def ready(self) -> None:
        from core.admin.site import register_start_panel

        from .home import COLLECT_PERMISSION, desk_panel, works_at_a_branch

        # The start page of branch staff: find a loan to collect on, the collection sheet.
        register_start_panel(
            "desk", desk_panel, order=10, permission=COLLECT_PERMISSION, when=works_at_a_branch
        )
