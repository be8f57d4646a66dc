"""Who did it: every write through the API (and the CLI) leaves activity rows that name the actor.

The actor goes in the activity row's ``data`` JSON under ``"actor"`` — no migration, and the
parcel timeline shows it as it shows the rest::

    {"actor": {"login": "li.lei", "account_id": 3, "token_id": "Xq3v9TfA"}}

Two ways in, one shape:

- :func:`activity` builds a row for a change a person made that records nothing by itself
  (an acknowledge, an account change): ``uow.record([activity(...)])``.
- :data:`ACTOR` is set for the length of an API request (:func:`acting_as`, by
  ``monitor.api.principal``); :func:`stamp` adds it to rows written meanwhile that have none —
  the ``anomaly_resolved`` row the rule engine writes when a person resolves by hand names
  that person. ``store.offload``/``transact`` copy the context to the store's threads, so it
  follows the work there. Rows written by the daemon's own jobs carry no actor: nobody did it.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from monitor.people.model import Principal

#: The principal the current API request (or CLI command) acts as; None in the daemon's own jobs.
ACTOR: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("people_actor", default=None)


def actor_of(principal: Principal) -> dict[str, Any]:
    """Return what an activity row says about who did it (no secret: a token's id, never the token)."""
    actor: dict[str, Any] = {"login": principal.login, "account_id": principal.account_id}
    if principal.token_id is not None:
        actor["token_id"] = principal.token_id
    return actor


@contextmanager
def acting_as(principal: Principal) -> Iterator[None]:
    """Attribute activity written in the block to ``principal``."""
    token = ACTOR.set(principal)
    try:
        yield
    finally:
        ACTOR.reset(token)


def stamp(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return activity rows with the current actor added to each ``data`` that names none."""
    principal = ACTOR.get()
    if principal is None:
        return list(rows)
    actor = actor_of(principal)
    return [r if "actor" in r.get("data", {}) else r | {"data": {**r.get("data", {}), "actor": actor}} for r in rows]


def activity(
    event: str, at: datetime, principal: Principal, parcel_id: int | None = None, **data: Any
) -> dict[str, Any]:
    """Return an activity row recording that ``principal`` did ``event`` (for ``uow.record``)."""
    return {"at": at, "event": event, "parcel_id": parcel_id, "data": {**data, "actor": actor_of(principal)}}
