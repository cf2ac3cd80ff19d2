import pytest
from django.urls import reverse

from accounts.models import Branch, User
from accounts.scoping import scope_queryset, visible_branch_ids
from sessions_ddb.ddb_models import SessionItem
from tests.factories import AreaFactory, BranchFactory, RegionFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def tree():
    west, south = RegionFactory(), RegionFactory()
    pune_area, mumbai_area = AreaFactory(region=west), AreaFactory(region=west)
    chennai_area = AreaFactory(region=south)
    return {
        "west": west,
        "pune_area": pune_area,
        "pune": BranchFactory(area=pune_area),
        "pimpri": BranchFactory(area=pune_area),
        "thane": BranchFactory(area=mumbai_area),
        "chennai": BranchFactory(area=chennai_area),
    }


def test_each_level_sees_its_part_of_the_hierarchy(tree):
    ids = {name: b.pk for name, b in tree.items() if isinstance(b, Branch)}
    staff = UserFactory(role="Branch Staff", home_branch=tree["pune"])
    area = UserFactory(level=User.Level.AREA, home_area=tree["pune_area"])
    region = UserFactory(level=User.Level.REGION, home_region=tree["west"])
    head_office = UserFactory(level=User.Level.HEAD_OFFICE)
    auditor = UserFactory(level=User.Level.BRANCH, home_branch=tree["pune"], role="Auditor")
    assert visible_branch_ids(staff) == {ids["pune"]}
    assert visible_branch_ids(area) == {ids["pune"], ids["pimpri"]}
    assert visible_branch_ids(region) == {ids["pune"], ids["pimpri"], ids["thane"]}
    assert visible_branch_ids(head_office) is None
    assert visible_branch_ids(auditor) is None


def test_an_inactive_user_sees_nothing(tree):
    staff = UserFactory(role="Branch Staff", home_branch=tree["pune"], is_active=False)
    assert scope_queryset(Branch.objects.all(), staff).count() == 0


def test_branch_and_user_lists_are_scoped(client, tree):
    manager = UserFactory(role="Branch Manager", home_branch=tree["pune"])
    colleague, outsider = (
        UserFactory(role="Branch Staff", home_branch=tree["pune"]),
        UserFactory(role="Branch Staff", home_branch=tree["chennai"]),
    )
    client.force_login(manager)
    branches = client.get(reverse("admin:accounts_branch_changelist")).context["cl"].result_list
    assert [b.pk for b in branches] == [tree["pune"].pk]
    users = client.get(reverse("admin:accounts_user_changelist")).context["cl"].result_list
    assert {u.pk for u in users} == {manager.pk, colleague.pk}
    assert outsider.pk not in {u.pk for u in users}
    response = client.get(reverse("admin:accounts_branch_change", args=[tree["chennai"].pk]))
    assert response.status_code == 302


def test_ending_all_sessions_of_a_user_from_the_admin(client, tree):
    from django.test import Client

    victim = UserFactory(role="Branch Staff", home_branch=tree["pune"])
    browser = Client()
    browser.force_login(victim)
    assert browser.get("/admin/").status_code == 200
    client.force_login(UserFactory(is_superuser=True))
    response = client.post(
        reverse("admin:accounts_user_changelist"),
        {"action": "end_sessions", "_selected_action": [victim.pk]},
        follow=True,
    )
    assert "1 session(s) ended" in response.content.decode()
    assert browser.get("/admin/").status_code == 302
    assert list(SessionItem.by_user.query(str(victim.pk))) == []
