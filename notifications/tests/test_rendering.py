import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from core.errors import ApplicationError
from notifications.exceptions import NotificationError, TemplateNotFound, TemplateRenderError
from notifications.models import Channel, NotificationTemplate
from notifications.rendering import format_day, format_inr, render_text, template_render
from tests.factories import receipt_context

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("1234.56"), "₹1,234.56"),
        ("123456.7", "₹1,23,456.70"),
        (Decimal("10000000"), "₹1,00,00,000.00"),
        (999, "₹999.00"),
        ("0.005", "₹0.01"),
        (Decimal("-1500"), "-₹1,500.00"),
    ],
)
def test_amounts_are_shown_in_rupees_with_indian_grouping(value, shown):
    assert format_inr(value) == shown


@pytest.mark.parametrize("value", [1234.56, "12,34", True])
def test_floats_and_non_amounts_are_refused(value):
    with pytest.raises(TemplateRenderError):
        format_inr(value)


def test_dates_are_shown_day_month_year_on_the_ist_date():
    late_evening_utc = dt.datetime(2026, 1, 4, 20, 0, tzinfo=ZoneInfo("UTC"))  # 5 Jan in IST
    assert format_day(dt.date(2026, 1, 5)) == "05 Jan 2026"
    assert format_day("2026-01-05") == "05 Jan 2026"
    assert format_day(late_evening_utc) == "05 Jan 2026"


def test_seeded_receipt_sms_renders_with_amount_in_rupees():
    rendered = template_render(code="receipt", channel=Channel.SMS, context=receipt_context())
    assert rendered.body == (
        "Dear Ramesh Kumar, we have received ₹1,23,456.70 towards loan LN0001234 on "
        "05 Jan 2026, receipt no. RC-000451. Thank you. - Sangam Finance Ltd"
    )


@pytest.mark.parametrize(
    ("code", "channel"),
    [
        ("welcome", Channel.EMAIL),
        ("welcome", Channel.SMS),
        ("receipt", Channel.EMAIL),
        ("receipt", Channel.SMS),
        ("pre_debit_notice", Channel.EMAIL),
        ("pre_debit_notice", Channel.SMS),
        ("bounce_notice", Channel.EMAIL),
        ("bounce_notice", Channel.SMS),
    ],
)
def test_every_seeded_template_renders(code, channel):
    context = receipt_context(
        name="Ramesh Kumar",
        username="rkumar",
        due_date=dt.date(2026, 2, 5),
        reason="Insufficient funds",
        charge=Decimal("590.00"),
    )
    rendered = template_render(code=code, channel=channel, context=context)
    assert rendered.body
    assert "{" not in rendered.body and "{" not in rendered.subject
    assert bool(rendered.subject) == (channel == Channel.EMAIL)


def test_bounce_charge_line_is_left_out_when_there_is_no_charge():
    context = receipt_context(due_date="2026-02-05", reason="Account closed")
    rendered = template_render(code="bounce_notice", channel=Channel.SMS, context=context)
    assert "bounce charge" not in rendered.body
    assert "(Account closed)" in rendered.body


def test_unknown_template_is_a_notification_error():
    with pytest.raises(TemplateNotFound) as caught:
        template_render(code="no_such_thing", channel=Channel.SMS, context={})
    assert isinstance(caught.value, NotificationError)
    with pytest.raises(TemplateNotFound):
        template_render(code="welcome", channel=Channel.PUSH, context={})


def test_missing_placeholder_is_refused_not_left_blank():
    context = receipt_context()
    del context["amount"]
    with pytest.raises(TemplateRenderError, match="amount"):
        template_render(code="receipt", channel=Channel.SMS, context=context)


def test_float_money_in_the_context_is_refused():
    with pytest.raises(TemplateRenderError, match="float"):
        template_render(code="receipt", channel=Channel.SMS, context=receipt_context(amount=1234.5))


def test_text_is_not_html_escaped():
    assert render_text("{{ name }}", {"name": "Shah & Sons <Pvt>"}) == "Shah & Sons <Pvt>"


def test_template_with_bad_syntax_does_not_validate():
    template = NotificationTemplate(code="broken", channel=Channel.SMS, body="{% if %}")
    with pytest.raises(ValidationError) as caught:
        template.full_clean()
    assert "body" in caught.value.message_dict


def test_email_template_needs_a_subject():
    template = NotificationTemplate(code="plain", channel=Channel.EMAIL, body="Hello")
    with pytest.raises(ValidationError) as caught:
        template.full_clean()
    assert "subject" in caught.value.message_dict


def test_notification_errors_are_application_errors_with_stable_codes():
    with pytest.raises(ApplicationError) as caught:
        template_render(code="no_such_thing", channel=Channel.SMS, context={})
    assert caught.value.code == "notification_template_not_found"
