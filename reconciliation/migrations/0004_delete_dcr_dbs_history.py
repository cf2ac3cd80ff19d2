from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("reconciliation", "0003_history_to_status_change"),
    ]

    operations = [
        migrations.DeleteModel(name="DbsHistory"),
        migrations.DeleteModel(name="DcrHistory"),
    ]
