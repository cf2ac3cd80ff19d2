"""NACH return codes and what each means for re-presentation and for the mandate.

A representative set of NPCI ACH debit return reasons; the table is editable in the
admin, so the policy (retryable, limits, mandate action) is data, not code.
"""

from django.db import migrations

CODES = [
    # code, description, retryable, mandate action, max presentations, retry after days
    ("01", "Account closed", False, "CANCEL", 1, 0),
    ("02", "No such account", False, "CANCEL", 1, 0),
    ("03", "Account description does not tally", False, "SUSPEND", 1, 0),
    ("04", "Balance insufficient", True, "NONE", 3, 5),
    ("05", "Not arranged for", True, "NONE", 2, 5),
    ("06", "Payment stopped by drawer", False, "SUSPEND", 1, 0),
    ("07", "Account blocked or frozen", False, "SUSPEND", 1, 0),
    ("08", "Mandate not received", False, "SUSPEND", 1, 0),
    ("09", "Miscellaneous: others", True, "NONE", 2, 3),
    ("10", "Amount exceeds the mandate limit", False, "SUSPEND", 1, 0),
    ("22", "Mandate cancelled by the payer", False, "CANCEL", 1, 0),
    ("51", "KYC documents pending", True, "NONE", 2, 7),
    ("68", "Account holder expired", False, "CANCEL", 1, 0),
]


def seed(apps, schema_editor):
    Policy = apps.get_model("mandates", "ReturnCodePolicy")
    for code, description, retryable, action, limit, days in CODES:
        Policy.objects.update_or_create(
            code=code,
            defaults={
                "description": description,
                "retryable": retryable,
                "mandate_action": action,
                "max_presentations": limit,
                "retry_after_days": days,
            },
        )


def unseed(apps, schema_editor):
    apps.get_model("mandates", "ReturnCodePolicy").objects.filter(
        code__in=[c[0] for c in CODES]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("mandates", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
