"""Copy the mandates' history (MandateTransition) into core.StatusChange; 0005 drops it."""

from functools import partial

from django.db import migrations

from core.history_copy import copy_backward, copy_forward

TABLE = {"old_model": "mandates.MandateTransition", "subject_model": "mandates.Mandate", "fk": "mandate"}


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("core", "0001_initial"),
        ("mandates", "0003_plural_names"),
    ]

    operations = [
        migrations.RunPython(partial(copy_forward, **TABLE), partial(copy_backward, **TABLE)),
    ]
