"""Customer changes through maker-checker.

The mobile, the PAN and the bank accounts (add, change, remove, make primary) of a customer
change only when a checker approves a maker's request. The request carries what it
replaces ("old") and the new values ("new"); approving validates both again under the
customer's lock, so a request overtaken by another change, or no longer valid, is refused
and can only be returned. One pending request per customer (the approvals app's
constraint): a checker always approves a change against what the customer has now.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import User, mobile_digits
from accounts.scoping import scope_queryset
from approvals.services import KindHandler, approval_request_create
from audit.masking import mask_value
from core.context import acting_as

from ..exceptions import CustomerChangeInvalid, CustomerChangeStale
from ..models import Customer, CustomerBankAccount
from ..selectors import CUSTOMER_CHANGE, customer_change_pending

GUARDED_FIELDS = {"mobile": "mobile", "pan": "PAN"}
BANK_FIELDS = ("holder_name", "bank_name", "account_number", "ifsc", "account_type")


class Change:
    """What a request changes (``payload["change"]``)."""

    MOBILE = "mobile"
    PAN = "pan"
    BANK_ADD = "bank_add"
    BANK_CHANGE = "bank_change"
    BANK_REMOVE = "bank_remove"
    BANK_PRIMARY = "bank_primary"

    LABELS = {
        MOBILE: "Change of mobile",
        PAN: "Change of PAN",
        BANK_ADD: "New bank account",
        BANK_CHANGE: "Change of bank account",
        BANK_REMOVE: "Removal of bank account",
        BANK_PRIMARY: "New primary bank account",
    }
    ON_ACCOUNT = frozenset({BANK_CHANGE, BANK_REMOVE, BANK_PRIMARY})


def _bank_values(account: CustomerBankAccount) -> dict[str, str]:
    return {name: getattr(account, name) for name in BANK_FIELDS}


def _invalid(error: ValidationError, fields: dict[str, str] | None = None) -> CustomerChangeInvalid:
    """A model's ValidationError as our refusal, on the first field it names."""
    messages = error.message_dict if hasattr(error, "error_dict") else {"": error.messages}
    field, texts = next(iter(messages.items()))
    field = "" if field == "__all__" else field
    return CustomerChangeInvalid(" ".join(texts), field=(fields or {}).get(field, field) or None)


def customer_change_check(
    *, customer: Customer, change: str, new: dict | None = None, account_id: int | None = None
) -> tuple[dict, dict]:
    """``(old, new)`` of a change of ``customer``, the new values cleaned (a mobile typed
    with +91 or spaces, a PAN in lower case), or ``CustomerChangeInvalid`` on the field at
    fault. Used by the request form (field messages), the request and the approval."""
    new = dict(new or {})
    if change in (Change.MOBILE, Change.PAN):
        field = change
        value = (new.get(field) or "").strip()
        value = mobile_digits(value) if field == Change.MOBILE else value.upper()
        candidate = Customer(**{field: value})
        others = [f.name for f in Customer._meta.fields if f.name != field]
        try:
            candidate.clean_fields(exclude=others)
        except ValidationError as exc:
            raise _invalid(exc) from None
        old = getattr(customer, field)
        if value == old:
            raise CustomerChangeInvalid(
                f"That is the customer's {GUARDED_FIELDS[field]} already.", field=field
            )
        return {field: old}, {field: value}
    if change == Change.BANK_ADD:
        return {}, _bank_check(customer, None, new)
    if change not in Change.ON_ACCOUNT:
        raise CustomerChangeInvalid(f"Unknown change {change!r}.", field="change")
    account = customer.bank_accounts.filter(pk=account_id).first() if account_id else None
    if account is None:
        raise CustomerChangeInvalid(
            "The customer has no such bank account (any more).", field="account"
        )
    old = {**_bank_values(account), "is_primary": account.is_primary}
    if change == Change.BANK_CHANGE:
        cleaned = _bank_check(customer, account, new)
        if all(cleaned[name] == old[name] for name in BANK_FIELDS):
            raise CustomerChangeInvalid("Nothing would change.", field="account_number")
        return old, cleaned
    if change == Change.BANK_PRIMARY and account.is_primary:
        raise CustomerChangeInvalid("This account is the primary one already.", field="account")
    return old, {}


def _bank_check(customer: Customer, account: CustomerBankAccount | None, new: dict) -> dict:
    values = {name: (str(new.get(name) or "")).strip() for name in BANK_FIELDS}
    values["ifsc"] = values["ifsc"].upper()
    values["account_type"] = values["account_type"] or CustomerBankAccount.AccountType.SAVINGS
    candidate = CustomerBankAccount(customer=customer, is_primary=False, **values)
    if account is not None:  # its own row is no duplicate of itself
        candidate.pk, candidate._state.adding = account.pk, False
    try:
        candidate.full_clean()
    except ValidationError as exc:
        raise _invalid(exc, {"": "account_number"}) from None
    values["is_primary"] = bool(new.get("is_primary")) if account is None else account.is_primary
    return values


def customer_change_describe(customer: Customer, change: str, old: dict) -> str:
    """The request's subject as the inbox lists it (an account number masked)."""
    account = f" {mask_value(old['account_number'])}" if old.get("account_number") else ""
    return f"{Change.LABELS[change]}{account} of {customer}"[:200]


@transaction.atomic
def customer_change_request(
    *,
    customer_id: int,
    change: str,
    reason: str,
    actor: User,
    new: dict | None = None,
    account_id: int | None = None,
):
    """Ask for a change of a customer's mobile, PAN or bank accounts; a checker applies it
    (``customer_change_apply``). Refused: a customer the maker may not see, an invalid
    value (on its field), another change of the customer already pending."""
    customer = (
        scope_queryset(Customer.objects.select_for_update(of=("self",)), actor)
        .filter(pk=customer_id)
        .first()
    )
    if customer is None:
        raise CustomerChangeInvalid(
            "No such customer that you may see.", code="not_found", status=404
        )
    old, cleaned = customer_change_check(
        customer=customer, change=change, new=new, account_id=account_id
    )
    pending = customer_change_pending(customer=customer)
    if pending is not None:
        raise CustomerChangeInvalid(
            f"A change of this customer waits for a checker already (request #{pending.pk}): "
            "one at a time.",
            code="already_pending",
        )
    return approval_request_create(
        kind=CUSTOMER_CHANGE,
        branch_id=customer.branch_id,
        entity=f"loans.customer#{customer.pk}",
        entity_repr=customer_change_describe(customer, change, old),
        reason=reason,
        payload={
            "customer_id": customer.pk,
            "change": change,
            "account_id": account_id,
            "old": old,
            "new": cleaned,
        },
        actor=actor,
    )


def customer_change_apply(*, payload: dict, actor: User | None) -> Customer:
    """Carry out an approved change (inside the approval's transaction): the customer's row
    and bank accounts locked, what it replaces still what the customer has, the new values
    valid now; the saves are audited by the change tracking, in the checker's name."""
    customer = Customer.objects.select_for_update().get(pk=payload["customer_id"])
    list(customer.bank_accounts.select_for_update().order_by("pk"))
    change, account_id = payload["change"], payload.get("account_id")
    try:
        old, new = customer_change_check(
            customer=customer, change=change, new=payload.get("new"), account_id=account_id
        )
    except CustomerChangeInvalid as exc:
        raise CustomerChangeInvalid(
            f"This change cannot be made now: {exc} Return the request.", field=exc.field
        ) from None
    if old != payload.get("old", {}):
        raise CustomerChangeStale(
            "The customer's details changed since this was asked for; return the request."
        )
    with acting_as(actor):
        if change in (Change.MOBILE, Change.PAN):
            setattr(customer, change, new[change])
            customer.save(update_fields=[change])
        elif change == Change.BANK_ADD:
            primary = new.pop("is_primary")
            account = CustomerBankAccount.objects.create(customer=customer, **new)
            if primary or not customer.bank_accounts.exclude(pk=account.pk).exists():
                _bank_primary_set(customer, account)
        else:
            account = customer.bank_accounts.get(pk=account_id)
            if change == Change.BANK_CHANGE:
                for name in BANK_FIELDS:
                    setattr(account, name, new[name])
                account.save(update_fields=list(BANK_FIELDS))
            elif change == Change.BANK_REMOVE:
                account.delete()
            else:
                _bank_primary_set(customer, account)
    return customer


def _bank_primary_set(customer: Customer, account: CustomerBankAccount) -> None:
    for other in customer.bank_accounts.filter(is_primary=True).exclude(pk=account.pk):
        other.is_primary = False
        other.save(update_fields=["is_primary"])  # first: one primary at a time
    account.is_primary = True
    account.save(update_fields=["is_primary"])


def _apply_customer_change(*, request, actor) -> None:
    customer_change_apply(payload=request.payload, actor=actor)


# The approval kind of a customer change (registered by LoansConfig.ready(), through
# ``loans.services.APPROVAL_KINDS``).
APPROVAL_KINDS = {
    CUSTOMER_CHANGE: KindHandler(
        maker_permission="loans.request_customer_change",
        checker_permission="loans.approve_customer_change",
        apply=_apply_customer_change,
    ),
}
