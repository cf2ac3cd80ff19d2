from celery import shared_task

from . import services


@shared_task(bind=True, acks_late=True, ignore_result=True)
def import_run_task(self, run_id: int) -> None:
    """Import a stored file (the admin's): goes on where a killed worker stopped; a second
    delivery while a worker holds the run does nothing."""
    services.import_continue(run_id=run_id)
