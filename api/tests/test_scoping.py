"""accounts.scoping for API clients: their allowed branches, or all with all_branches."""

import pytest

from accounts.models import Branch
from accounts.scoping import scope_queryset, sees_everything, visible_branch_ids
from api.principal import ApiPrincipal
from tests.factories import BranchFactory, make_api_client

pytestmark = pytest.mark.django_db


def test_a_client_sees_its_allowed_branches_only(django_assert_num_queries):
    pune, thane, _chennai = BranchFactory(), BranchFactory(), BranchFactory()
    api_client, _ = make_api_client(branches=[pune, thane])
    principal = ApiPrincipal(api_client)
    assert not sees_everything(principal)
    with django_assert_num_queries(1):
        assert visible_branch_ids(principal) == {pune.pk, thane.pk}
    with django_assert_num_queries(0):  # cached on the principal, as for users
        assert visible_branch_ids(principal) == {pune.pk, thane.pk}
    assert set(scope_queryset(Branch.objects.all(), principal)) == {pune, thane}


def test_a_client_with_all_branches_sees_everything():
    branches = {BranchFactory(), BranchFactory()}
    principal = ApiPrincipal(make_api_client(all_branches=True)[0])
    assert sees_everything(principal)
    assert visible_branch_ids(principal) is None
    assert branches <= set(scope_queryset(Branch.objects.all(), principal))


def test_a_client_without_branches_sees_nothing():
    BranchFactory()
    principal = ApiPrincipal(make_api_client()[0])
    assert visible_branch_ids(principal) == set()
    assert not scope_queryset(Branch.objects.all(), principal).exists()
