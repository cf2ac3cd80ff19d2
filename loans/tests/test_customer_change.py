"""A customer's mobile, PAN and bank accounts change only through maker-checker: branch staff
ask, a branch manager or operations approves (never the maker), approving validates again
under the customer's lock and applies the change once, audited in the checker's name."""

import pytest
from django.urls import reverse

from approvals.exceptions import AlreadyDecided, MakerCannotCheck
from approvals.models import ApprovalRequest
from approvals.services import approval_decide
from audit.models import AuditMessage
from core.workflow import NotAllowed
from loans.exceptions import CustomerChangeInvalid, CustomerChangeStale
from loans.models import Customer, CustomerBankAccount
from loans.services import Change, customer_change_request, customer_update
from tests.concurrency import in_threads

pytestmark = pytest.mark.django_db


def _account(customer, number="123456789012", primary=True):
    return CustomerBankAccount.objects.create(
        customer=customer,
        holder_name=customer.name,
        bank_name="State Bank of India",
        account_number=number,
        ifsc="SBIN0001234",
        is_primary=primary,
    )


def _ask(world, change=Change.MOBILE, new=None, **kw):
    customer = kw.pop("customer", None) or world.loans["own"].customer
    return customer_change_request(
        customer_id=customer.pk,
        change=change,
        new={"mobile": "+91 99887 76655"} if new is None else new,
        reason="Customer brought a letter",
        actor=kw.pop("actor", None) or world.users["BS"],
        **kw,
    )


def test_staff_request_changes_nothing_until_the_manager_approves(world):
    customer = world.loans["own"].customer
    before = customer.mobile
    request = _ask(world)
    customer.refresh_from_db()
    assert customer.mobile == before
    assert request.payload["old"] == {"mobile": before}
    assert request.payload["new"] == {"mobile": "9988776655"}  # +91 and spaces dropped

    approval_decide(request_id=request.pk, approve=True, actor=world.users["BM"])
    customer.refresh_from_db()
    assert customer.mobile == "9988776655"


def test_the_change_is_audited_in_the_checkers_name_masked(world):
    customer = world.loans["own"].customer
    request = _ask(world, change=Change.PAN, new={"pan": "zzzpz9999z"})
    approval_decide(request_id=request.pk, approve=True, actor=world.users["OP"])
    events = AuditMessage.objects.filter(ref=f"loans.customer#{customer.pk}").order_by("id")
    (event,) = [e for e in events if e.action == "update"]
    assert event.actor_id == world.users["OP"].pk
    assert event.changes["pan"][1] == "XXXXXX999Z"
    assert "ZZZPZ9999Z" not in str(event.changes)
    customer.refresh_from_db()
    assert customer.pan == "ZZZPZ9999Z"


def test_a_returned_request_leaves_the_customer_as_they_were(world):
    customer = world.loans["own"].customer
    before = customer.mobile
    request = _ask(world)
    approval_decide(
        request_id=request.pk, approve=False, actor=world.users["BM"], remarks="Letter unsigned"
    )
    customer.refresh_from_db()
    assert customer.mobile == before
    assert ApprovalRequest.objects.get(pk=request.pk).status == ApprovalRequest.Status.REJECTED


def test_the_maker_cannot_approve_their_own_change(world):
    manager = world.users["BM"]
    request = _ask(world, actor=manager)  # a manager may ask too; another person decides
    with pytest.raises(MakerCannotCheck):
        approval_decide(request_id=request.pk, approve=True, actor=manager)
    with pytest.raises(NotAllowed):  # branch staff may ask, not approve
        approval_decide(request_id=request.pk, approve=True, actor=world.users["BS"])
    approval_decide(request_id=request.pk, approve=True, actor=world.users["OP"])
    assert Customer.objects.get(pk=request.payload["customer_id"]).mobile == "9988776655"


def test_invalid_values_are_refused_on_their_field_when_asked(world):
    with pytest.raises(CustomerChangeInvalid) as mobile:
        _ask(world, new={"mobile": "12345"})
    assert mobile.value.field == "mobile"
    with pytest.raises(CustomerChangeInvalid) as pan:
        _ask(world, change=Change.PAN, new={"pan": "ABC123"})
    assert pan.value.field == "pan"
    customer = world.loans["own"].customer
    with pytest.raises(CustomerChangeInvalid) as same:
        _ask(world, new={"mobile": customer.mobile})
    assert same.value.field == "mobile"
    with pytest.raises(CustomerChangeInvalid) as ifsc:
        _ask(
            world,
            change=Change.BANK_ADD,
            new={
                "holder_name": "A",
                "bank_name": "B",
                "account_number": "1234567890",
                "ifsc": "NOTANIFSC",
            },
        )
    assert ifsc.value.field == "ifsc"
    assert not ApprovalRequest.objects.exists()


def test_one_pending_change_per_customer_and_only_customers_the_maker_sees(world):
    _ask(world)
    with pytest.raises(CustomerChangeInvalid, match="waits for a checker"):
        _ask(world, change=Change.PAN, new={"pan": "QQQPQ1111Q"})
    with pytest.raises(CustomerChangeInvalid) as foreign:
        _ask(world, customer=world.loans["far"].customer)
    assert foreign.value.status == 404


def test_approval_refuses_a_change_overtaken_by_another(world):
    customer = world.loans["own"].customer
    account = _account(customer)
    remove = _ask(world, change=Change.BANK_REMOVE, new={}, account_id=account.pk)
    # the account went meanwhile (e.g. the customer was merged by a data fix)
    account.delete()
    with pytest.raises(CustomerChangeInvalid, match="no such bank account"):
        approval_decide(request_id=remove.pk, approve=True, actor=world.users["BM"])
    assert ApprovalRequest.objects.get(pk=remove.pk).status == ApprovalRequest.Status.PENDING
    approval_decide(request_id=remove.pk, approve=False, actor=world.users["BM"], remarks="gone")

    request = _ask(world)
    Customer.objects.filter(pk=customer.pk).update(mobile="9000000001")
    with pytest.raises(CustomerChangeStale):
        approval_decide(request_id=request.pk, approve=True, actor=world.users["BM"])
    assert Customer.objects.get(pk=customer.pk).mobile == "9000000001"


def test_approval_validates_the_new_value_again(world):
    request = _ask(world)
    # a value that stopped being valid (stored payloads are data: validate them again)
    ApprovalRequest.objects.filter(pk=request.pk).update(
        payload={**request.payload, "new": {"mobile": "0000"}}
    )
    with pytest.raises(CustomerChangeInvalid, match="cannot be made now"):
        approval_decide(request_id=request.pk, approve=True, actor=world.users["BM"])


def test_bank_accounts_are_added_changed_made_primary_and_removed_through_requests(world):
    customer = world.loans["own"].customer
    first = _account(customer)
    manager = world.users["BM"]

    def approve(request):
        approval_decide(request_id=request.pk, approve=True, actor=manager)

    approve(
        _ask(
            world,
            change=Change.BANK_ADD,
            new={
                "holder_name": customer.name,
                "bank_name": "HDFC Bank",
                "account_number": "50100012345678",
                "ifsc": "hdfc0001234",
                "account_type": "SAVINGS",
                "is_primary": True,
            },
        )
    )
    second = customer.bank_accounts.get(account_number="50100012345678")
    first.refresh_from_db()
    assert (second.ifsc, second.is_primary, first.is_primary) == ("HDFC0001234", True, False)

    approve(_ask(world, change=Change.BANK_PRIMARY, new={}, account_id=first.pk))
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.is_primary, second.is_primary) == (True, False)

    changed = {
        "holder_name": customer.name,
        "bank_name": "HDFC Bank",
        "account_number": "50100087654321",
        "ifsc": "HDFC0001234",
        "account_type": "CURRENT",
    }
    approve(_ask(world, change=Change.BANK_CHANGE, new=changed, account_id=second.pk))
    second.refresh_from_db()
    assert (second.account_number, second.account_type) == ("50100087654321", "CURRENT")

    approve(_ask(world, change=Change.BANK_REMOVE, new={}, account_id=second.pk))
    assert list(customer.bank_accounts.values_list("pk", flat=True)) == [first.pk]


def test_direct_updates_of_the_guarded_fields_are_refused(world):
    customer = world.loans["own"].customer
    with pytest.raises(CustomerChangeInvalid) as refused:
        customer_update(customer_id=customer.pk, actor=world.users["BS"], mobile="9111111111")
    assert refused.value.field == "mobile"
    customer_update(customer_id=customer.pk, actor=world.users["BS"], name="Renamed Person")
    assert Customer.objects.get(pk=customer.pk).name == "Renamed Person"


def test_the_request_form_shows_an_invalid_value_on_its_field(client, world):
    customer = world.loans["own"].customer
    client.force_login(world.users["BS"])
    url = reverse("admin:loans_customer_request_change", args=[customer.pk])
    response = client.post(f"{url}?change=pan", {"pan": "12345", "reason": "New card"})
    assert response.status_code == 200
    assert "pan" in response.context["form"].errors
    assert "Enter a valid PAN" in response.context["form"].errors["pan"][0]
    assert not ApprovalRequest.objects.exists()

    response = client.post(f"{url}?change=pan", {"pan": "aaapa1111a", "reason": "New card"})
    assert response.status_code == 302
    request = ApprovalRequest.objects.get()
    assert request.payload["new"] == {"pan": "AAAPA1111A"}


def test_guarded_fields_are_read_only_on_the_customers_page(client, world):
    customer = world.loans["own"].customer
    _account(customer)
    client.force_login(world.users["BS"])
    url = reverse("admin:loans_customer_change", args=[customer.pk])
    page = client.get(url)
    assert "mobile" not in page.context["adminform"].form.fields
    assert "pan" not in page.context["adminform"].form.fields
    inline = page.context["inline_admin_formsets"][0]
    assert not inline.has_add_permission and not inline.has_change_permission
    client.post(
        url,
        {
            "name": customer.name,
            "mobile": "9111111111",
            "pan": "QQQPQ1111Q",
            "branch": customer.branch_id,
            "bank_accounts-TOTAL_FORMS": "0",
            "bank_accounts-INITIAL_FORMS": "0",
        },
    )
    fresh = Customer.objects.get(pk=customer.pk)
    assert (fresh.mobile, fresh.pan) == (customer.mobile, customer.pan)


def test_bank_account_numbers_are_masked_wherever_they_are_only_shown(client, world):
    customer = world.loans["own"].customer
    account = _account(customer, number="123456789012")
    pages = [
        reverse("admin:loans_customer_change", args=[customer.pk]),  # the read-only inline
        reverse("admin:loans_customerbankaccount_change", args=[account.pk]),
        reverse("admin:loans_customer_request_change", args=[customer.pk])
        + f"?change=bank_remove&account={account.pk}",
    ]
    for code in ("BS", "BM", "OP", "AU"):
        client.force_login(world.users[code])
        for url in pages[:2] + (pages[2:] if code == "BS" else []):
            body = client.get(url).content.decode()
            assert "123456789012" not in body, (code, url)
            assert "XXXXXXXX9012" in body, (code, url)
    # Entering a new customer's account is typing it: an input, unmasked.
    client.force_login(world.users["BS"])
    add = client.get(reverse("admin:loans_customer_add")).content.decode()
    assert 'name="bank_accounts-0-account_number"' in add or (
        'name="bank_accounts-__prefix__-account_number"' in add
    )


def test_the_request_page_masks_values_except_for_the_maker_and_checkers(client, world):
    request = _ask(world, change=Change.PAN, new={"pan": "MMMPM7777M"})
    url = reverse("approvals:detail", args=[request.pk])
    for code, full in (("BS", True), ("BM", True), ("OP", True), ("AU", False), ("FI", False)):
        client.force_login(world.users[code])
        body = client.get(url).content.decode()
        assert ("MMMPM7777M" in body) is full, code
        assert ("XXXXXX777M" in body) is not full, code


@pytest.mark.django_db(transaction=True)
def test_concurrent_approvals_apply_the_change_once(world):
    customer = world.loans["own"].customer
    _account(customer)
    request = _ask(
        world,
        change=Change.BANK_ADD,
        new={
            "holder_name": "X",
            "bank_name": "HDFC Bank",
            "account_number": "50100099999999",
            "ifsc": "HDFC0001234",
        },
    )
    results = in_threads(
        lambda: approval_decide(request_id=request.pk, approve=True, actor=world.users["BM"]),
        lambda: approval_decide(request_id=request.pk, approve=True, actor=world.users["OP"]),
    )
    assert sum(isinstance(r, ApprovalRequest) for r in results) == 1
    assert sum(isinstance(r, AlreadyDecided) for r in results) == 1
    assert customer.bank_accounts.filter(account_number="50100099999999").count() == 1
