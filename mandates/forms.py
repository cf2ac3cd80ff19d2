"""Forms of the mandate screens: the admin's mandate form, the suspend/cancel request and
the partner's response file."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

from django import forms
from django.core.exceptions import ValidationError
from pynamodb.exceptions import PynamoDBException

from core.admin.approval_request import ReasonForm
from core.errors import ApplicationError
from core.forms import AsciiModelChoiceField
from loans.models import BankingPartner

from .api.results import PartnerResult
from .models import Mandate, ReturnCodePolicy, SandboxBounceRule
from .selectors import executions_by_id, recorded_results
from .services import mandate_update

MANDATE_FIELDS = list(Mandate.DETAIL_FIELDS)


class MandateForm(forms.ModelForm):
    """Details of a new or draft mandate. The payer must be on the loan (``Mandate.clean``).

    A draft's change is made once the form is valid, by ``mandate_update`` (it locks the
    row, checks it still is a draft, saves what changed and records the editor); its
    refusal shows on the form. The admin sets ``actor``."""

    actor = None

    class Meta:
        model = Mandate
        fields = MANDATE_FIELDS

    def _post_clean(self):
        super()._post_clean()  # the model's own checks first
        if self.instance.pk and not self.errors:
            changed = [name for name in self.changed_data if name in MANDATE_FIELDS]
            try:
                mandate_update(
                    mandate_id=self.instance.pk,
                    actor=self.actor,
                    **{name: self.cleaned_data[name] for name in changed},
                )
            except ApplicationError as exc:
                field = exc.field if exc.field in self.fields else None
                self.add_error(field, ValidationError(exc.message, code=exc.code))
            except ValidationError as exc:  # the model's checks on the locked row
                self._update_errors(exc)


class StopRequestForm(ReasonForm):
    ACTIONS = [("SUSPEND", "Suspend"), ("CANCEL", "Cancel")]
    reason_help = "Why the debits must stop. Operations reads it before approving."
    reason_rows = 3
    field_order = ["action", "reason"]

    action = forms.ChoiceField(choices=ACTIONS, widget=forms.RadioSelect)


class SandboxBounceRuleForm(forms.ModelForm):
    class Meta:
        model = SandboxBounceRule
        fields = ["account_number", "return_code"]

    def clean_return_code(self) -> str:
        code = self.cleaned_data["return_code"].strip()
        if not ReturnCodePolicy.objects.filter(code=code).exists():
            raise ValidationError("Unknown NACH return code: add it to the return-code policies.")
        return code


# --- A partner's response file ----------------------------------------------------------

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_LINES = 20_000
HEADER = ["execution_id", "status", "return_code", "reason"]
EXECUTION_ID = re.compile(r"^[A-Za-z0-9-]{1,40}$")


@dataclass(frozen=True)
class ResultLine:
    number: int
    result: PartnerResult


class ResponseFileForm(forms.Form):
    """A CSV of ``execution_id,status,return_code,reason`` (a header line is optional).

    Valid only when every line is: each bad line is reported with its number, and then
    nothing is applied. Besides its format, a line must name an execution presented to
    this partner and must not contradict a result already recorded (or an earlier line).
    """

    partner = AsciiModelChoiceField(
        queryset=BankingPartner.objects.order_by("name"),
        help_text="The banking partner that sent the file.",
    )
    file = forms.FileField(help_text="CSV: execution_id,status,return_code,reason")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.text = ""
        self.lines: list[ResultLine] = []
        self.line_errors: list[tuple[int, str]] = []

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_FILE_BYTES:
            raise ValidationError(f"The file is larger than {MAX_FILE_BYTES // 1024 // 1024} MB.")
        try:
            self.text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationError("The file is not UTF-8 text (save it as CSV UTF-8).") from None
        return upload

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        self._parse(self.text)
        if not self.line_errors and not self.lines:
            raise ValidationError("The file has no results.")
        if self.lines:
            self._check_against_records(cleaned["partner"])
        self.line_errors.sort()
        if self.line_errors:
            raise ValidationError(
                "%(count)s line(s) are invalid; nothing was applied.",
                params={"count": len(self.line_errors)},
                code="bad_lines",
            )
        return cleaned

    def _parse(self, text: str) -> None:
        codes = set(ReturnCodePolicy.objects.values_list("code", flat=True))
        seen: dict[str, tuple[int, str, str]] = {}
        try:
            rows = list(csv.reader(io.StringIO(text)))
        except csv.Error as exc:
            raise ValidationError(f"The file is not valid CSV: {exc}.") from None
        for number, row in enumerate(rows, start=1):
            if number > MAX_LINES:
                self._bad(number, f"The file has more than {MAX_LINES} lines: split it.")
                return
            cells = [cell.strip() for cell in row]
            if not any(cells):
                continue
            if number == 1 and [c.lower() for c in cells[:4]] == HEADER[: len(cells[:4])]:
                continue
            error = self._line_error(cells, codes)
            if error:
                self._bad(number, error)
                continue
            result = PartnerResult(
                execution_id=cells[0],
                status=cells[1].upper(),
                return_code=cells[2] if len(cells) > 2 else "",
                reason=cells[3] if len(cells) > 3 else "",
            )
            earlier = seen.get(result.execution_id)
            if earlier and earlier[1:] != (result.status, result.return_code):
                self._bad(
                    number,
                    f"{result.execution_id} contradicts line {earlier[0]} "
                    f"({earlier[1]} {earlier[2]}".strip()
                    + ").",
                )
                continue
            seen.setdefault(result.execution_id, (number, result.status, result.return_code))
            self.lines.append(ResultLine(number, result))

    @staticmethod
    def _line_error(cells: list[str], codes: set[str]) -> str | None:
        if len(cells) < 2 or len(cells) > 4:
            return f"Expected 2 to 4 columns ({', '.join(HEADER)}), found {len(cells)}."
        execution_id, status = cells[0], cells[1].upper()
        return_code = cells[2] if len(cells) > 2 else ""
        reason = cells[3] if len(cells) > 3 else ""
        if not EXECUTION_ID.match(execution_id):
            return f"Invalid execution id {execution_id!r}."
        if status not in {"SUCCESS", "BOUNCED"}:
            return f"Status must be SUCCESS or BOUNCED, not {cells[1]!r}."
        if status == "SUCCESS" and return_code:
            return "A success has no return code."
        if status == "BOUNCED" and not return_code:
            return "A bounce needs its return code."
        if return_code and return_code not in codes:
            return f"Unknown NACH return code {return_code!r}."
        if len(reason) > 200:
            return "The reason is longer than 200 characters."
        return None

    def _check_against_records(self, partner: BankingPartner) -> None:
        ids = [line.result.execution_id for line in self.lines]
        try:
            executions = executions_by_id(ids)
        except PynamoDBException:
            raise ValidationError(
                "The executions store (DynamoDB) is unavailable; nothing was applied. "
                "Try again shortly."
            ) from None
        recorded = recorded_results(ids)
        for line in self.lines:
            result = line.result
            item = executions.get(result.execution_id)
            if item is None or item.partner_code != partner.code:
                self._bad(line.number, f"No execution {result.execution_id} for {partner}.")
                continue
            before = recorded.get(result.execution_id)
            if before and before != (result.status, result.return_code):
                self._bad(
                    line.number,
                    f"{result.execution_id} already has the result {before[0]} {before[1]}".strip()
                    + ".",
                )

    def _bad(self, number: int, message: str) -> None:
        self.line_errors.append((number, message))
