"""The first notification templates (staff edit them in the admin afterwards)."""

from django.db import migrations

SIGN_OFF = "\n\nRegards,\n{{ lender_name }}"

TEMPLATES = [
    (
        "welcome",
        "EMAIL",
        "Welcome to {{ lender_name }}",
        "Dear {{ name }},\n\n"
        "Welcome to {{ lender_name }}. Your back-office user ID is {{ username }}.\n\n"
        "Your administrator will tell you how to sign in for the first time; please choose a "
        "strong password when you do. {{ lender_name }} will never ask for your password or "
        "an OTP by phone, SMS or email." + SIGN_OFF,
    ),
    (
        "welcome",
        "SMS",
        "",
        "Welcome to {{ lender_name }}. Your back-office user ID is {{ username }}. "
        "Never share your password or OTP with anyone.",
    ),
    (
        "receipt",
        "SMS",
        "",
        "Dear {{ customer_name }}, we have received {{ amount|inr }} towards loan "
        "{{ loan_number }} on {{ paid_on|day }}, receipt no. {{ receipt_number }}. "
        "Thank you. - {{ lender_name }}",
    ),
    (
        "receipt",
        "EMAIL",
        "Payment received: receipt {{ receipt_number }} for loan {{ loan_number }}",
        "Dear {{ customer_name }},\n\n"
        "Thank you for your payment. We have received the following towards your loan:\n\n"
        "Loan account:   {{ loan_number }}\n"
        "Amount:         {{ amount|inr }}\n"
        "Date:           {{ paid_on|day }}\n"
        "Mode:           {{ mode }}\n"
        "Receipt number: {{ receipt_number }}\n\n"
        "Please keep this receipt for your records. If you did not make this payment, "
        "contact your branch at once." + SIGN_OFF,
    ),
    (
        "pre_debit_notice",
        "SMS",
        "",
        "Dear {{ customer_name }}, your EMI of {{ amount|inr }} for loan {{ loan_number }} "
        "will be debited via NACH on {{ due_date|day }}. Please keep sufficient balance in "
        "your bank account. - {{ lender_name }}",
    ),
    (
        "pre_debit_notice",
        "EMAIL",
        "EMI of {{ amount|inr }} for loan {{ loan_number }} will be debited on {{ due_date|day }}",
        "Dear {{ customer_name }},\n\n"
        "This is an advance notice that the EMI of your loan will be debited from your bank "
        "account under your NACH mandate{% if umrn %} (UMRN {{ umrn }}){% endif %}:\n\n"
        "Loan account: {{ loan_number }}\n"
        "EMI amount:   {{ amount|inr }}\n"
        "Debit date:   {{ due_date|day }}\n\n"
        "Please keep sufficient balance in your account before the debit date to avoid a "
        "bounce charge and an impact on your credit record." + SIGN_OFF,
    ),
    (
        "bounce_notice",
        "SMS",
        "",
        "Dear {{ customer_name }}, your EMI of {{ amount|inr }} for loan {{ loan_number }} "
        "due on {{ due_date|day }} could not be collected ({{ reason }})."
        "{% if charge %} A bounce charge of {{ charge|inr }} applies.{% endif %} "
        "Please pay at your branch at the earliest. - {{ lender_name }}",
    ),
    (
        "bounce_notice",
        "EMAIL",
        "EMI not collected for loan {{ loan_number }}",
        "Dear {{ customer_name }},\n\n"
        "The NACH debit of your EMI could not be collected:\n\n"
        "Loan account: {{ loan_number }}\n"
        "EMI amount:   {{ amount|inr }}\n"
        "Due date:     {{ due_date|day }}\n"
        "Reason:       {{ reason }}\n"
        "{% if charge %}Bounce charge: {{ charge|inr }}\n{% endif %}\n"
        "Please pay the overdue amount at your branch or through our payment channels at the "
        "earliest to avoid further charges and an impact on your credit record. If you have "
        "already paid, please ignore this message." + SIGN_OFF,
    ),
]


def seed(apps, schema_editor):
    NotificationTemplate = apps.get_model("notifications", "NotificationTemplate")
    for code, channel, subject, body in TEMPLATES:
        NotificationTemplate.objects.get_or_create(
            code=code, channel=channel, defaults={"subject": subject, "body": body}
        )


class Migration(migrations.Migration):
    dependencies = [("notifications", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
