"""The role rules: a viewer reads, an operator acts, an admin also manages people."""

from __future__ import annotations

import pytest

from monitor.people.model import SERVICE, Principal, Role
from monitor.people.roles import Permission, can

P = Permission
#: Written out by hand, not derived from PERMISSIONS: a change to the rules must change this table too.
EXPECTED = {
    Role.VIEWER: {P.READ},
    Role.OPERATOR: {P.READ, P.ANOMALIES, P.TICKETS, P.INTERCEPTS, P.SHIPMENTS, P.IMPORTS},
    Role.ADMIN: {P.READ, P.ANOMALIES, P.TICKETS, P.INTERCEPTS, P.SHIPMENTS, P.IMPORTS, P.USERS},
}


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("action", list(Permission))
def test_the_role_matrix(role: Role, action: Permission) -> None:
    principal = Principal(7, "li.lei", role, "abcdefgh")
    assert can(principal, action) is (action in EXPECTED[role])


def test_the_service_token_is_the_admin() -> None:
    assert SERVICE.is_service and SERVICE.login == "service" and SERVICE.account_id is None
    assert all(can(SERVICE, action) for action in Permission)


def test_a_viewer_changes_nothing_and_only_an_admin_manages_people() -> None:
    viewer, operator = Principal(1, "v", Role.VIEWER), Principal(2, "o", Role.OPERATOR)
    assert [a for a in Permission if can(viewer, a)] == [Permission.READ]
    assert not can(operator, Permission.USERS)
