from celery import shared_task

from .schedule import backup_daily


@shared_task(acks_late=True, ignore_result=True)
def backup_daily_task() -> dict | None:
    """The daily backup and its pruning (``backup.schedule.backup_daily``). Beat runs it once
    a day; a second beat or a redelivered task finds the date's run held or done and skips
    it. No retries: a failed run is recorded (the last-run metric and the age alert) and
    the next day's run starts afresh."""
    return backup_daily()
