"""The role rules: a viewer reads, an operator acts, an admin also manages people.

One table, :data:`PERMISSIONS`, says it all; routes ask :func:`can` and never compare roles
themselves, so a new permission is one line here and docs/people.md's table.
"""

from __future__ import annotations

from enum import StrEnum

from monitor.people.model import Principal, Role


class Permission(StrEnum):
    """Something a principal may be allowed to do."""

    READ = "read"  # every GET: parcels, anomalies, tickets, intercepts, reports
    ANOMALIES = "anomalies.work"  # acknowledge, resolve
    TICKETS = "tickets.work"  # assign, change state, close with an outcome, comment
    INTERCEPTS = "intercepts.request"  # ask a carrier to stop a parcel by hand
    SHIPMENTS = "shipments.write"  # add shipments (POST /shipments)
    IMPORTS = "imports.run"  # import a CSV of shipments
    USERS = "users.manage"  # add, disable, change the role of accounts; their tokens


OPERATE = frozenset(
    {
        Permission.READ,
        Permission.ANOMALIES,
        Permission.TICKETS,
        Permission.INTERCEPTS,
        Permission.SHIPMENTS,
        Permission.IMPORTS,
    }
)
PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.READ}),
    Role.OPERATOR: OPERATE,
    Role.ADMIN: OPERATE | {Permission.USERS},
}


def can(principal: Principal, action: Permission) -> bool:
    """Tell whether ``principal`` may do ``action``."""
    return action in PERMISSIONS[principal.role]
