"""The suite's one ``world``: a little organisation built through the real services.

Branches ``own`` and ``near`` share an area; ``far`` is in another region. One user per
role: the branch users at ``own``, the area manager over ``own``'s area, the others at
head office. One customer with one loan at each branch. A test that needs more extends
it in a fixture of its own name (``world`` stays this one); ``objects`` and ``values``
are for such extensions. Loaded by the root ``conftest.py``.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

import pytest

from accounts.models import Branch, User
from loans.models import LoanAccount
from tests.factories import AreaFactory, BranchFactory, UserFactory, make_loan

WHERES = ("own", "near", "far")
HEAD_OFFICE_ROLES = {"OP": "Operations", "FI": "Finance", "AU": "Auditor", "AD": "Admin"}


@dataclass
class World:
    branches: dict[str, Branch] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)  # role code -> user
    loans: dict[str, LoanAccount] = field(default_factory=dict)  # where -> its loan
    objects: dict[str, dict[str, object]] = field(default_factory=dict)  # label -> where -> obj
    values: dict[str, object] = field(default_factory=dict)

    @property
    def people(self) -> dict[str, User]:
        """The maker-checker chain at ``own``: staff, manager, head-office ops."""
        return {"staff": self.users["BS"], "manager": self.users["BM"], "ops": self.users["OP"]}


def build_world(*, username_prefix: str = "world") -> World:
    area = AreaFactory()
    branches = {"own": BranchFactory(area=area), "near": BranchFactory(area=area)}
    branches["far"] = BranchFactory()
    own = branches["own"]
    users = {
        "BS": UserFactory(
            role="Branch Staff", home_branch=own, username=f"{username_prefix}.staff"
        ),
        "BM": UserFactory(
            role="Branch Manager", home_branch=own, username=f"{username_prefix}.manager"
        ),
        "AM": UserFactory(role="Area Manager", home_area=area, username=f"{username_prefix}.area"),
    }
    for code, role in HEAD_OFFICE_ROLES.items():
        users[code] = UserFactory(role=role, username=f"{username_prefix}.{role.lower()}")
    loans = {
        where: make_loan(branch=branch, disbursed_on=datetime.date(2026, 10, 1), tenure_months=12)
        for where, branch in branches.items()
    }
    return World(branches=branches, users=users, loans=loans)


@pytest.fixture
def world(db) -> World:
    return build_world()
