import factory
from django.contrib.auth.models import Group

from accounts.models import Area, Branch, Region, User

PASSWORD = "Branch@2026!"


class RegionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Region

    code = factory.Sequence(lambda n: f"R{n:03d}")
    name = factory.Sequence(lambda n: f"Region {n}")


class AreaFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Area

    code = factory.Sequence(lambda n: f"A{n:03d}")
    name = factory.Sequence(lambda n: f"Area {n}")
    region = factory.SubFactory(RegionFactory)


class BranchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Branch

    code = factory.Sequence(lambda n: f"B{n:04d}")
    name = factory.Sequence(lambda n: f"Branch {n}")
    area = factory.SubFactory(AreaFactory)
    state = "Maharashtra"


class UserFactory(factory.django.DjangoModelFactory):
    """A member of staff in a role; pass ``role`` (a group name) and their home."""

    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    employee_code = factory.Sequence(lambda n: f"E{n:05d}")
    is_staff = True
    level = User.Level.HEAD_OFFICE
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if extracted:
            self.groups.add(Group.objects.get(name=extracted))
        self.save()


def branch_user(branch: Branch, role: str = "Branch Staff", **kwargs) -> User:
    return UserFactory(level=User.Level.BRANCH, home_branch=branch, role=role, **kwargs)
