"""External ticket sinks: a signed webhook per ticket event, for teams with a ticket system of their own.

Each ``[[tickets.sinks]]`` gets one document per ticket event (opened, assigned, state
changes, comments, reopened, auto-closed, reshipped), signed like the alert webhook
(``X-Parcel-Monitor-Timestamp`` and ``X-Parcel-Monitor-Signature: sha256=<hex HMAC-SHA256(secret,
"<timestamp>.<raw body>")>``), format in ``docs/webhook.md``. Delivery goes through the outbox:
:func:`enqueue` adds one ``ticket_sink`` action per sink in the transaction that records the
event, keyed ``ticket_sink:<event id>:<sink>``, so the event is sent at least once and a crash
between the send and the commit sends the *same* ``event_id`` again (the receiver dedupes on
it), never a new one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import structlog
from pydantic import BaseModel, ConfigDict, Field, field_validator

from monitor.actions.outbox import DONE, Outcome, give_up, retry
from monitor.alerts.channels.webhook import RETRYABLE_4XX, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from monitor.clock import Clock, as_utc
from monitor.errors import ConfigError
from monitor.store.store import Store, UnitOfWork

log = structlog.get_logger("monitor.tickets.sinks")

KIND = "ticket_sink"
VERSION = "1"
#: The ticket events a sink is told about (not the SLA's own overdue/escalated notes).
SENT_KINDS = frozenset({"opened", "assigned", "state", "outcome", "comment", "reopened", "auto_closed", "reshipped"})
ENV = re.compile(r"^[A-Z_][A-Z0-9_]*$")
BODY_SHOWN = 100


class SinkConfig(BaseModel):
    """One ``[[tickets.sinks]]`` table: a name, and the environment variables holding its URL and secret."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    url_env: str
    secret_env: str

    @field_validator("url_env", "secret_env")
    @classmethod
    def _env(cls, value: str) -> str:
        if not ENV.match(value):
            raise ValueError("expected an environment variable name such as OPS_TICKETS_URL")
        return value


@dataclass(frozen=True, slots=True)
class Sink:
    """A sink with its URL and secret read from the environment; neither shows in a repr."""

    name: str
    url: str = field(repr=False)
    secret: str = field(repr=False)


def build_sinks(configs: Sequence[SinkConfig], environ: Mapping[str, str]) -> dict[str, Sink]:
    """Read each sink's URL and secret from the environment; a missing one is a ConfigError naming the variable."""
    sinks: dict[str, Sink] = {}
    for i, config in enumerate(configs):
        values = {}
        for key in ("url_env", "secret_env"):
            name = getattr(config, key)
            if not environ.get(name):
                raise ConfigError(f"tickets.sinks[{i}].{key}: the environment variable {name} is not set")
            values[key] = environ[name]
        if not values["url_env"].startswith(("http://", "https://")):
            raise ConfigError(f"tickets.sinks[{i}].url_env: {config.url_env} does not hold an http(s) URL")
        sinks[config.name] = Sink(config.name, values["url_env"], values["secret_env"])
    return sinks


def action_key(event_id: int, sink: str) -> str:
    """Return the outbox key of one event for one sink: the same event is the same key, whatever happens."""
    return f"{KIND}:{event_id}:{sink}"


def enqueue(
    uow: UnitOfWork, sinks: Sequence[str], events: Sequence[tuple[int, str]], parcel_id: int, now: datetime
) -> None:
    """Queue ``events`` ((event id, kind) of one ticket) for every sink, in the caller's transaction."""
    uow.enqueue(_rows(sinks, [(event_id, kind, parcel_id) for event_id, kind in events], now))


def _rows(sinks: Sequence[str], events: Sequence[tuple[int, str, int]], now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "idempotency_key": action_key(event_id, sink),
            "kind": KIND,
            "parcel_id": parcel_id,
            "target": sink,
            "next_attempt_at": now,
            "created_at": now,
        }
        for event_id, kind, parcel_id in events
        if kind in SENT_KINDS
        for sink in sinks
    ]


class SinkQueue:
    """A ``TicketBook`` listener: queue every new history row for every sink, in the row's own transaction."""

    def __init__(self, sinks: Sequence[str]) -> None:
        self.sinks = list(sinks)

    def __call__(self, uow: UnitOfWork, events: list[dict[str, Any]]) -> None:
        wanted = [e for e in events if str(e["kind"]) in SENT_KINDS]
        if not self.sinks or not wanted:
            return
        parcels = uow.ticket_parcels({e["ticket_id"] for e in wanted})
        now = max(e["at"] for e in wanted)
        uow.enqueue(_rows(self.sinks, [(e["id"], str(e["kind"]), parcels[e["ticket_id"]]) for e in wanted], now))


def _time(value: datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat()


def document(row: Any) -> dict[str, Any]:
    """Describe one ticket event and the ticket as it stands, for machines (UTC ISO times, yuan)."""
    return {
        "version": VERSION,
        "type": "ticket_event",
        "event_id": row.event_id,
        "kind": row.kind,
        "at": _time(row.at),
        "actor": row.actor,
        "from": row.from_value,
        "to": row.to_value,
        "body": row.body,
        "ticket": {
            "id": row.id,
            "rule": row.rule,
            "title": row.title,
            "state": row.state,
            "assignee": row.assignee_login,
            "team": row.team,
            "shop": row.shop,
            "carrier": row.carrier,
            "tracking_no": row.tracking_no,
            "order_id": row.order_id,
            "stake": None if row.stake_fen is None else round(row.stake_fen / 100, 2),
            "due_at": _time(row.due_at),
            "outcome": row.outcome,
            "note": row.note,
            "created_at": _time(row.created_at),
            "closed_at": _time(row.closed_at),
            "close_reason": row.close_reason,
            "reopened_count": row.reopened_count,
        },
    }


class SinkSender:
    """Outbox handler for ``ticket_sink``: post one signed event document, done in the store only after a 2xx."""

    def __init__(self, store: Store, clock: Clock, http: httpx.AsyncClient, sinks: Mapping[str, Sink],
                 wall: Clock | None = None) -> None:  # fmt: skip
        self.store = store
        self.clock = clock
        #: The receiver checks the signature's timestamp against real time, whatever the business clock says.
        self.wall = wall or clock
        self.http = http
        self.sinks = dict(sinks)

    async def __call__(self, action: Any) -> Outcome:
        sink = self.sinks.get(action.target)
        if sink is None:
            return give_up(f"no ticket sink named {action.target!r} in the config")
        event_id = int(action.idempotency_key.split(":")[1])
        row = await self.store.transact(lambda uow: uow.ticket_event_snapshot(event_id))
        if row is None:
            return give_up(f"ticket event {event_id} is gone")
        body = json.dumps(document(row), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        timestamp = str(int(self.wall.now().timestamp()))
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp,
                   SIGNATURE_HEADER: sign(sink.secret, timestamp, body)}  # fmt: skip
        try:
            response = await self.http.post(sink.url, content=body, headers=headers)
        except httpx.TransportError as err:  # timeouts included
            return self._failed(sink, action, None, True, f"transport error ({type(err).__name__})")
        except httpx.DecodingError as err:  # a reply its Content-Encoding does not decode: the verdict is unknown
            return self._failed(sink, action, None, True, f"undecodable reply ({type(err).__name__})")
        if not response.is_success:
            status = response.status_code
            snippet = " ".join(response.text.split())[:BODY_SHOWN]
            retryable = status in RETRYABLE_4XX or status >= 500
            return self._failed(sink, action, status, retryable, f"sink HTTP {status}: {snippet}")
        now = self.clock.now()
        await self.store.transact(lambda uow: uow.finish_action(action.id, now))
        log.info("ticket.sink_sent", sink=sink.name, event_id=event_id, kind=row.kind, ticket_id=row.id)
        return DONE

    @staticmethod
    def _failed(sink: Sink, action: Any, status: int | None, retryable: bool, error: str) -> Outcome:
        log.warning("ticket.sink_error", sink=sink.name, key=action.idempotency_key, status=status,
                    retryable=retryable, error=error)  # fmt: skip
        return retry(error) if retryable else give_up(error)
