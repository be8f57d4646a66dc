"""What working a ticket can refuse; each error names the field (and value) the API echoes.

::

    TicketError (status, code, field, value: what the API's error body says)
    ├── UnknownTicket        404  no ticket with this id
    ├── IllegalTransition    409  the state cannot go from → to (``from_state``, ``to_state``)
    ├── OutcomeRequired      422  closing as done needs an outcome from the fixed set
    └── InvalidChange        422  an assignee/team/outcome that does not exist or does not fit
"""

from __future__ import annotations

from typing import Any


class TicketError(Exception):
    """A change to a ticket that is refused; ``str()`` is the message for a person."""

    status = 422
    code = "invalid_field"

    def __init__(self, message: str, *, field: str, value: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.value = value


class UnknownTicket(TicketError):
    """No ticket with this id."""

    status = 404
    code = "not_found"

    def __init__(self, ticket_id: int) -> None:
        super().__init__(f"no ticket {ticket_id}", field="ticket_id", value=ticket_id)


class IllegalTransition(TicketError):
    """The state machine has no edge from → to."""

    status = 409
    code = "illegal_transition"

    def __init__(self, ticket_id: int, from_state: str, to_state: str, allowed: tuple[str, ...]) -> None:
        where = ", ".join(allowed) or "nothing"
        super().__init__(
            f"ticket {ticket_id} cannot go from {from_state} to {to_state} (from {from_state}: {where})",
            field="state",
            value=to_state,
        )
        self.from_state = from_state
        self.to_state = to_state
        self.allowed = allowed


class OutcomeRequired(TicketError):
    """Done needs an outcome."""

    code = "missing_field"

    def __init__(self, ticket_id: int) -> None:
        super().__init__(
            f"ticket {ticket_id}: closing as done needs an outcome (chased, reshipped, buyer_contacted, "
            "claim_filed, nothing_needed)",
            field="outcome",
        )


class InvalidChange(TicketError):
    """An assignee, team or outcome that does not exist or does not fit the ticket."""
