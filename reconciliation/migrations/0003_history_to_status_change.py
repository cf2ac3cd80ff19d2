"""Copy the DCR and DBS histories (DcrHistory, DbsHistory) into core.StatusChange; 0003
drops them."""

from functools import partial

from django.db import migrations

from core.history_copy import copy_backward, copy_forward

DCR = {"old_model": "reconciliation.DcrHistory", "subject_model": "reconciliation.Dcr", "fk": "dcr"}
DBS = {"old_model": "reconciliation.DbsHistory", "subject_model": "reconciliation.Dbs", "fk": "dbs"}


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("core", "0001_initial"),
        ("reconciliation", "0002_statement_content_hash"),
    ]

    operations = [
        migrations.RunPython(partial(copy_forward, **DCR), partial(copy_backward, **DCR)),
        migrations.RunPython(partial(copy_forward, **DBS), partial(copy_backward, **DBS)),
    ]
