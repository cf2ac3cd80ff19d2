"""Rendering of notification templates: plain text, strict about placeholders, no floats.

A private template engine (not the site's) because notifications are plain text (no HTML
autoescaping: "A & B" must stay as it is in an SMS) and must never go out with a blank
where a value was expected.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.template import Context, Engine, Library, TemplateSyntaxError
from django.utils import timezone

from core.money import PAISA, inr
from core.templatetags.formats import day

from .exceptions import TemplateNotFound, TemplateRenderError

register = Library()

# Django puts this in place of an unknown variable (with the variable's name for %s).
_MISSING = "\x00missing:%s\x00"


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


def format_inr(value: Decimal | int | str) -> str:
    """``Decimal("123456.7")`` -> ``"₹1,23,456.70"``: the screens' one money format
    (``core.money.inr``), refusing floats and what is not an amount."""
    if isinstance(value, float | bool):
        raise TemplateRenderError(f"money must be a Decimal or a string, not {value!r}")
    try:
        amount = Decimal(str(value).strip()).quantize(PAISA, rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        raise TemplateRenderError(f"not an amount: {value!r}") from None
    return inr(amount)


def format_day(value: dt.date | dt.datetime | str) -> str:
    """A date (a datetime counts on its IST date, a string must be ISO) as the screens show
    it: ``05 Jan 2026``."""
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value.strip())
        except ValueError:
            raise TemplateRenderError(f"not an ISO date: {value!r}") from None
    if isinstance(value, dt.datetime):
        value = timezone.localtime(value) if timezone.is_aware(value) else value
        value = value.date()
    if not isinstance(value, dt.date):
        raise TemplateRenderError(f"not a date: {value!r}")
    return day(value)


register.filter("inr", format_inr)
register.filter("day", format_day)


@functools.cache
def _engine() -> Engine:
    return Engine(string_if_invalid=_MISSING, builtins=[__name__])


def template_check(text: str) -> None:
    """Raise ``TemplateRenderError`` when template text does not compile."""
    try:
        _engine().from_string(text)
    except TemplateSyntaxError as exc:
        raise TemplateRenderError(f"template syntax error: {exc}") from None


def _reject_floats(context: Mapping[str, Any], path: str = "") -> None:
    for key, value in context.items():
        if isinstance(value, float):
            raise TemplateRenderError(
                f"context value {path}{key} is a float; pass money as Decimal or string"
            )
        if isinstance(value, Mapping):
            _reject_floats(value, f"{path}{key}.")


def render_text(text: str, context: Mapping[str, Any]) -> str:
    _reject_floats(context)
    try:
        template = _engine().from_string(text)
        output = template.render(
            Context({"lender_name": settings.LENDER_NAME, **context}, autoescape=False)
        )
    except TemplateSyntaxError as exc:
        raise TemplateRenderError(f"template syntax error: {exc}") from None
    if "\x00missing:" in output:
        missing = sorted({part.split("\x00")[0] for part in output.split("\x00missing:")[1:]})
        raise TemplateRenderError(f"missing placeholder(s): {', '.join(missing)}")
    return output


def template_render(*, code: str, channel: str, context: Mapping[str, Any]) -> Rendered | None:
    """Render the (code, channel) template; ``None`` when staff switched the template off."""
    from .models import NotificationTemplate

    template = NotificationTemplate.objects.filter(code=code, channel=channel).first()
    if template is None:
        raise TemplateNotFound(f"no notification template {code!r} for channel {channel}")
    if not template.is_active:
        return None
    subject = " ".join(render_text(template.subject, context).split())
    body = render_text(template.body, context).strip()
    return Rendered(subject=subject, body=body)
