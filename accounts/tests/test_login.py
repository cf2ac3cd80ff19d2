import pytest
from django.urls import reverse

from accounts.models import User
from tests.factories import PASSWORD, BranchFactory, UserFactory

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"


def _login(client, username, password):
    return client.post(LOGIN, {"username": username, "password": password})


def test_staff_log_in_with_their_password(client):
    user = UserFactory(role="Branch Staff", home_branch=BranchFactory())
    response = _login(client, user.username, PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_repeated_failed_logins_lock_the_account_out(client, settings):
    user = UserFactory(role="Branch Staff", home_branch=BranchFactory())
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login(client, user.username, "wrong-password").status_code == 200
    locked = _login(client, user.username, "wrong-password")
    assert locked.status_code == 429
    # even the right password is refused while locked out
    assert _login(client, user.username, PASSWORD).status_code == 429
    assert "_auth_user_id" not in client.session


def test_a_lockout_is_per_user_not_for_everyone(client, settings):
    victim, other = (
        UserFactory(role="Branch Staff", home_branch=BranchFactory()),
        UserFactory(role="Branch Staff", home_branch=BranchFactory()),
    )
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(client, victim.username, "nope")
    assert _login(client, other.username, PASSWORD).status_code == 302


@pytest.mark.parametrize(
    ("password", "message"),
    [("12345678", "entirely numeric"), ("password1", "too common"), ("Ab1!", "too short")],
)
def test_weak_passwords_are_refused_when_creating_a_user(client, password, message):
    client.force_login(UserFactory(is_superuser=True))
    response = client.post(
        reverse("admin:accounts_user_add"),
        {
            "username": "new.clerk",
            "usable_password": "true",
            "password1": password,
            "password2": password,
            "level": "HEAD_OFFICE",
        },
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not User.objects.filter(username="new.clerk").exists()


def test_a_user_level_needs_its_matching_home(client):
    client.force_login(UserFactory(is_superuser=True))
    response = client.post(
        reverse("admin:accounts_user_add"),
        {
            "username": "new.clerk",
            "usable_password": "true",
            "password1": "Pune@Branch2026",
            "password2": "Pune@Branch2026",
            "level": "BRANCH",
        },
    )
    assert response.status_code == 200
    assert "Choose the branch" in response.content.decode()
    assert not User.objects.filter(username="new.clerk").exists()


def test_an_off_site_next_lands_on_the_admin_not_a_missing_profile_page(client):
    user = UserFactory(role="Branch Staff", home_branch=BranchFactory())
    response = client.post(
        "/admin/login/?next=https://evil.example/steal",
        {"username": user.username, "password": PASSWORD},
    )
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert "_auth_user_id" in client.session


SPRAYER, COLLEAGUE = "203.0.113.7", "198.51.100.9"


def _login_from(client, address, username, password):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address)


def test_failures_from_one_address_across_many_usernames_lock_that_address_out(client, settings):
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 8
    user = UserFactory(role="Branch Staff", home_branch=BranchFactory())
    # one guess each at many usernames: never the per-user limit, always the same address
    for n in range(settings.LOGIN_ADDRESS_FAILURE_LIMIT - 1):
        assert _login_from(client, SPRAYER, f"clerk{n}", "Summer2026!").status_code == 200
    assert _login_from(client, SPRAYER, "clerk-last", "Summer2026!").status_code == 429
    # even a right password is refused from that address while it is locked out...
    assert _login_from(client, SPRAYER, user.username, PASSWORD).status_code == 429
    assert "_auth_user_id" not in client.session
    # ...and the same user from another address is not
    assert _login_from(client, COLLEAGUE, user.username, PASSWORD).status_code == 302


def test_a_success_from_the_address_does_not_clear_its_failures(client, settings):
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 4
    own = UserFactory(
        role="Branch Staff", home_branch=BranchFactory()
    )  # the sprayer's own (or a guessed) account
    for n in range(settings.LOGIN_ADDRESS_FAILURE_LIMIT - 1):
        assert _login_from(client, SPRAYER, f"clerk{n}", "Summer2026!").status_code == 200
    assert _login_from(client, SPRAYER, own.username, PASSWORD).status_code == 302
    client.logout()
    assert _login_from(client, SPRAYER, "clerk-last", "Summer2026!").status_code == 429


def test_the_address_limit_is_above_the_per_user_limit(settings):
    # colleagues behind one office address must not lock each other out with a few typos
    assert settings.LOGIN_ADDRESS_FAILURE_LIMIT > settings.AXES_FAILURE_LIMIT
