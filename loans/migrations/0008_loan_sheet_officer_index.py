from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # built without locking out writes: the loan table may hold millions of rows
    atomic = False

    dependencies = [
        ("loans", "0007_loan_collection_officer_sheet"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="loanaccount",
            index=models.Index(
                condition=models.Q(("status", "ACTIVE")),
                fields=["branch", "collection_officer", "-dpd", "loan_number"],
                include=(
                    "next_due_amount",
                    "overdue_principal",
                    "overdue_interest",
                    "overdue_charges",
                    "bucket",
                    "next_due_date",
                    "last_payment_date",
                ),
                name="loan_sheet_officer",
            ),
        ),
    ]
