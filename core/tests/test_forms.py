"""core.forms: money, ids and dates typed with ASCII digits only."""

import datetime
from decimal import Decimal

import pytest
from django import forms

from accounts.models import Branch
from core.forms import (
    NON_ASCII_MESSAGE,
    AsciiDateField,
    AsciiDecimalField,
    AsciiIntegerField,
    AsciiModelChoiceField,
)
from tests.factories import BranchFactory

ARABIC_INDIC_1500 = "\u0661\u0665\u0660\u0660"
FULL_WIDTH_1500 = "\uff11\uff15\uff10\uff10"
DEVANAGARI_1500 = "\u0967\u096b\u0966\u0966"


@pytest.mark.parametrize("text", [ARABIC_INDIC_1500, FULL_WIDTH_1500, DEVANAGARI_1500])
def test_django_reads_other_scripts_digits_and_the_ascii_fields_refuse_them(text):
    assert forms.DecimalField().clean(text) == Decimal("1500")  # why these fields exist
    for field in (AsciiDecimalField(), AsciiIntegerField()):
        with pytest.raises(forms.ValidationError) as refused:
            field.clean(text)
        assert refused.value.messages == [NON_ASCII_MESSAGE]
    assert AsciiDecimalField(decimal_places=2).clean("1500.50") == Decimal("1500.50")
    assert AsciiIntegerField().clean("-15") == -15


def test_an_ascii_date_field_refuses_other_scripts_digits():
    field = AsciiDateField()
    assert field.clean("2026-01-31") == datetime.date(2026, 1, 31)
    with pytest.raises(forms.ValidationError):
        field.clean("\u0662\u0660\u0662\u0666-01-31")


@pytest.mark.django_db
def test_an_id_in_other_scripts_digits_is_not_read_as_the_ascii_id():
    branch = BranchFactory()
    digits = str(branch.pk)
    arabic = "".join(chr(0x0660 + int(d)) for d in digits)
    assert forms.ModelChoiceField(Branch.objects.all()).clean(arabic) == branch  # the hole
    field = AsciiModelChoiceField(Branch.objects.all())
    assert field.clean(digits) == branch
    with pytest.raises(forms.ValidationError) as refused:
        field.clean(arabic)
    assert refused.value.messages == [NON_ASCII_MESSAGE]
