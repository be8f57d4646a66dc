"""/api/v1/tickets: the queue ops staff work — list, read, assign, move, close, comment, in bulk, as CSV.

Writes go through :class:`monitor.tickets.TicketBook` in one transaction each, recording the
caller (the request's principal) on every history row; a refusal changes nothing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable
from datetime import datetime, tzinfo
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from monitor.api.body import parse_json, parse_model
from monitor.api.context import MAX_ID, ApiContext, Ctx, Limit, RowId, text_query
from monitor.api.errors import ApiError
from monitor.api.principal import Who, allowed
from monitor.api.schemas import (
    LOGIN,
    TEAM,
    BulkOut,
    CommentIn,
    TicketBulkIn,
    TicketDetail,
    TicketEventOut,
    TicketFilter,
    TicketOut,
    TicketPage,
    TicketPatchIn,
    errors,
    yuan,
)
from monitor.people.model import Principal
from monitor.people.roles import Permission
from monitor.store.store import UnitOfWork
from monitor.store.views import TicketPage as RowsPage
from monitor.store.views import Views
from monitor.tickets import UNSET, TicketChange
from monitor.tickets.errors import IllegalTransition, TicketError
from monitor.tickets.model import OUTCOME_LABELS
from monitor.tickets.reshipment import reship
from monitor.tickets.store import TicketRows

router = APIRouter(tags=["tickets"])
R = TypeVar("R")

#: Rows one CSV read fetches (one read transaction each, so a long export holds no snapshot).
CSV_CHUNK = 1000
CSV_COLUMNS = (
    "id", "state", "rule", "title", "carrier", "tracking_no", "order_id", "shop", "assignee", "team", "stake_yuan",
    "due_at", "outcome", "outcome_label", "note", "reopened_count", "created_at", "closed_at", "close_reason",
)  # fmt: skip
#: Cells starting like a formula are prefixed with ' so a spreadsheet shows them as text (CSV injection).
FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _body(name: str, example: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}, "example": example}},
        }
    }


TicketCursor = Annotated[
    str | None,
    Query(
        description="`next_cursor` of the previous page (the last row's stake and id); omit for the first page.",
        examples=["1250.17"],
        max_length=24,
        pattern=r"^(n|[0-9]{1,10})\.[0-9]{1,10}$",
    ),
]
Assignee = Annotated[
    str | None,
    Query(description="A login, `me` (the caller), or `none` (the unassigned queue).", examples=["me"], pattern=LOGIN),
]
Team = Annotated[str | None, Query(description="A configured team.", examples=["ops"], pattern=TEAM)]
Overdue = Annotated[bool | None, Query(description="`true`: only active tickets whose deadline (`due_at`) has passed.")]
State = Annotated[TicketFilter | None, Query(description="A state, or `active` (open, processing, reopened).")]
Severity = Annotated[
    Literal["info", "warning", "critical"] | None,
    Query(description="The severity of the anomaly behind it (a refund's ticket has none).", examples=["critical"]),
]


def _cursor(cursor: str | None) -> tuple[int | None, int] | None:
    """Read a queue cursor ``stake.id`` (``n.id`` when the last row had no stake)."""
    if not cursor:
        return None
    stake, _, last = cursor.partition(".")
    if int(last) > MAX_ID or (stake != "n" and int(stake) > MAX_ID):  # both are 32-bit INTEGER columns
        raise ApiError(422, "invalid_field", "not a cursor this API returned", field="cursor", value=cursor)
    return (None if stake == "n" else int(stake)), int(last)


def _next_cursor(page: RowsPage) -> str | None:
    if page.next_key is None:
        return None
    stake, last = page.next_key
    return f"{'n' if stake is None else stake}.{last}"


def _refused(err: TicketError) -> ApiError:
    """Answer a refusal of the ticket book with the API's one error shape."""
    extra: dict[str, Any] = {} if err.value is None else {"value": err.value}
    if isinstance(err, IllegalTransition):
        extra["allowed"] = list(err.allowed)
    return ApiError(err.status, err.code, err.message, field=err.field, **extra)


async def _write(ctx: ApiContext, work: Callable[[UnitOfWork], R]) -> R:
    """Run one ticket change in a transaction; a refusal rolls it back and becomes a 4xx."""
    try:
        return await ctx.store.transact(work)
    except TicketError as err:
        raise _refused(err) from None


def _detail(views: Views, ticket_id: int) -> TicketDetail | None:
    row = views.ticket(ticket_id)
    if row is None:
        return None
    events = [TicketEventOut.of(e) for e in views.ticket_events(ticket_id)]
    return TicketDetail(**TicketOut.of(row).model_dump(), events=events)


async def _load(ctx: ApiContext, ticket_id: int) -> TicketDetail:
    detail = await ctx.read(lambda views: _detail(views, ticket_id))
    if detail is None:
        raise ApiError(404, "not_found", f"no ticket {ticket_id}", field="ticket_id", value=ticket_id)
    return detail


def _change(body: TicketPatchIn) -> TicketChange:
    given = body.model_fields_set
    return TicketChange(
        assignee=body.assignee if "assignee" in given else UNSET,
        team=body.team if "team" in given else UNSET,
        state=body.state.value if body.state is not None else None,
        outcome=body.outcome.value if body.outcome is not None else None,
        note=body.note,
    )


def _assignee(assignee: str | None, who: Principal) -> str | None:
    """Turn the ``assignee`` filter into a login, ``""`` (unassigned) or None (anyone)."""
    if assignee is None:
        return None
    if assignee.lower() == "none":
        return ""
    return who.login if assignee.lower() == "me" else assignee.lower()


def _filters(
    ctx: ApiContext,
    who: Principal,
    state: str | None,
    assignee: str | None,
    team: str | None,
    rule: str | None,
    shop: str | None,
    carrier: str | None,
    overdue: bool | None,
    severity: str | None,
) -> dict[str, Any]:
    return {
        "severity": severity,
        "state": state,
        "assignee": _assignee(assignee, who),
        "team": team,
        "rule": rule,
        "shop": shop,
        "carrier": carrier,
        "overdue_at": ctx.clock.now() if overdue else None,
    }


@router.get(
    "/tickets",
    summary="The ticket queue",
    description="Most money at stake first (tickets without a stake last), then oldest first. Filter on any of "
    "state, assignee (`me`, `none` or a login), team, rule, severity, shop, carrier and `overdue=true`. Page with "
    "`cursor`.",
    response_model=TicketPage,
    responses=errors(401, 422),
)
async def list_tickets(
    ctx: Ctx,
    who: Who,
    limit: Limit = 100,
    cursor: TicketCursor = None,
    state: State = None,
    assignee: Assignee = None,
    team: Team = None,
    rule: Annotated[str | None, text_query("The rule that opened it, or `refund`.", ["stalled"])] = None,
    shop: Annotated[str | None, text_query("Shop name.")] = None,
    carrier: Annotated[str | None, text_query("Carrier code.", ["zto"])] = None,
    overdue: Overdue = None,
    severity: Severity = None,
) -> TicketPage:
    """Return one page of the queue."""
    after = _cursor(cursor)
    filters = _filters(ctx, who, state, assignee, team, rule, shop, carrier, overdue, severity)
    page = await ctx.read(lambda views: views.tickets(**filters, limit=limit, after=after))
    return TicketPage(items=[TicketOut.of(r) for r in page.rows], next_cursor=_next_cursor(page))


@router.get(
    "/tickets.csv",
    summary="The ticket queue as CSV",
    description="The same filters and order as `GET /tickets`, every matching ticket (no paging), streamed. UTF-8 "
    "with a byte-order mark so Excel shows the Chinese; times in the configured time zone with their offset; "
    "money in yuan.",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {"schema": {"type": "string"}, "example": "id,state,rule,...\r\n"}}},
        **errors(401, 422),
    },
)
async def tickets_csv(
    ctx: Ctx,
    who: Who,
    state: State = None,
    assignee: Assignee = None,
    team: Team = None,
    rule: Annotated[str | None, text_query("The rule that opened it, or `refund`.", ["stalled"])] = None,
    shop: Annotated[str | None, text_query("Shop name.")] = None,
    carrier: Annotated[str | None, text_query("Carrier code.", ["zto"])] = None,
    overdue: Overdue = None,
    severity: Severity = None,
) -> StreamingResponse:
    """Stream every matching ticket as CSV."""
    filters = _filters(ctx, who, state, assignee, team, rule, shop, carrier, overdue, severity)
    headers = {"Content-Disposition": 'attachment; filename="tickets.csv"'}
    return StreamingResponse(_csv(ctx, filters), media_type="text/csv; charset=utf-8", headers=headers)


async def _csv(ctx: ApiContext, filters: dict[str, Any]) -> AsyncIterator[bytes]:
    yield "\ufeff".encode() + _line(CSV_COLUMNS)
    after: tuple[int | None, int] | None = None
    while True:
        page = await ctx.read(lambda views, after=after: views.tickets(**filters, limit=CSV_CHUNK, after=after))
        if page.rows:
            yield b"".join(_line(_cells(r, ctx.timezone)) for r in page.rows)
        if page.next_key is None:
            return
        after = page.next_key


def _cells(row: Any, zone: tzinfo) -> tuple[Any, ...]:
    def when(value: datetime | None) -> str:
        return "" if value is None else value.astimezone(zone).isoformat()

    outcome = row.outcome or ""
    return (
        row.id, row.state, row.rule, row.title, row.carrier, row.tracking_no, row.order_id, row.shop,
        row.assignee_login or "", row.team or "", "" if row.stake_fen is None else f"{yuan(row.stake_fen):.2f}",
        when(row.due_at), outcome, OUTCOME_LABELS.get(outcome, "") if outcome else "", row.note,
        row.reopened_count, when(row.created_at), when(row.closed_at), row.close_reason or "",
    )  # fmt: skip


def _line(cells: tuple[Any, ...]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerow([f"'{c}" if isinstance(c, str) and c.startswith(FORMULA) else c for c in cells])
    return out.getvalue().encode()


@router.get(
    "/tickets/{ticket_id}",
    summary="One ticket with its history",
    description="The ticket and every change made to it (who, when, from → to) and its comments, oldest first.",
    response_model=TicketDetail,
    responses=errors(401, 404, 422),
)
async def get_ticket(ticket_id: RowId, ctx: Ctx) -> TicketDetail:
    """Return one ticket and its history."""
    return await _load(ctx, ticket_id)


@router.patch(
    "/tickets/{ticket_id}",
    dependencies=[allowed(Permission.TICKETS)],
    summary="Assign, move or close a ticket",
    description="Send only what changes: `assignee` (a login; null unassigns), `team`, `state`, `outcome`, `note`. "
    "Closing as `done` needs an `outcome`; an `outcome` alone closes an open ticket. A move the lifecycle does not "
    "allow is 409 naming from and to (`allowed` lists where it may go). Needs the operator or admin role.",
    response_model=TicketDetail,
    responses=errors(400, 401, 403, 404, 409, 422),
    openapi_extra=_body("TicketPatchIn", {"state": "done", "outcome": "chased", "note": "催了快递员"}),
)
async def patch_ticket(ticket_id: RowId, request: Request, ctx: Ctx, who: Who) -> TicketDetail:
    """Change one ticket, recording the caller."""
    body = parse_model(TicketPatchIn, parse_json(await request.body()))
    change, replacement = _change(body), _replacement(body)

    def work(uow: UnitOfWork) -> None:
        ctx.monitor.tickets.change(uow, ticket_id, change, who.login)
        if replacement is not None:  # 已补发: watch the new parcel, linked to the original, in the same transaction
            ticket = TicketRows(uow).get(ticket_id)
            reship(uow, ctx.monitor.shipments, ticket, *replacement, who.login, ctx.adapters,
                   record=ctx.monitor.tickets.record)  # fmt: skip

    await _write(ctx, work)
    return await _load(ctx, ticket_id)


def _replacement(body: TicketPatchIn) -> tuple[str, str] | None:
    """Return the replacement shipment a reshipped outcome names; it needs both fields, nothing else takes them."""
    given = body.new_carrier is not None or body.new_tracking_no is not None
    reshipped = body.outcome is not None and body.outcome.value == "reshipped"
    if given and not reshipped:
        raise ApiError(422, "invalid_field", "a replacement goes with outcome 'reshipped'", field="outcome",
                       value=body.outcome.value if body.outcome else None)  # fmt: skip
    if reshipped:
        for name in ("new_carrier", "new_tracking_no"):
            if not (getattr(body, name) or "").strip():
                raise ApiError(422, "missing_field", f"outcome 'reshipped' needs {name}", field=name)
        return (body.new_carrier or "", body.new_tracking_no or "")
    return None


@router.post(
    "/tickets/{ticket_id}/comments",
    dependencies=[allowed(Permission.TICKETS)],
    status_code=201,
    summary="Comment on a ticket",
    description="Add a free comment (1–2,000 characters) to the ticket's history. Needs the operator or admin role.",
    response_model=TicketEventOut,
    responses=errors(400, 401, 403, 404, 422),
    openapi_extra=_body("CommentIn", {"body": "已联系快递员, 等回复"}),
)
async def comment(ticket_id: RowId, request: Request, ctx: Ctx, who: Who) -> TicketEventOut:
    """Add a comment, recording the caller."""
    body = parse_model(CommentIn, parse_json(await request.body()))
    event_id = await _write(ctx, lambda uow: ctx.monitor.tickets.comment(uow, ticket_id, body.body, who.login))
    events = await ctx.read(lambda views: views.ticket_events(ticket_id))
    return TicketEventOut.of(next(e for e in events if e.id == event_id))


@router.post(
    "/tickets/bulk",
    dependencies=[allowed(Permission.TICKETS)],
    summary="Change up to 500 tickets at once",
    description="The fields of `PATCH /tickets/{id}` applied to every id in `ids` (1–500, each once), all or nothing: "
    "an unknown id or a refused change answers 4xx naming its index (`ids[3]`) and changes nothing. "
    "Needs the operator or admin role.",
    response_model=BulkOut,
    responses=errors(400, 401, 403, 404, 409, 422),
    openapi_extra=_body("TicketBulkIn", {"ids": [17, 18, 19], "state": "done", "outcome": "nothing_needed"}),
)
async def bulk(request: Request, ctx: Ctx, who: Who) -> BulkOut:
    """Apply one change to many tickets in one transaction."""
    body = parse_model(TicketBulkIn, parse_json(await request.body()))
    if (body.outcome is not None and body.outcome.value == "reshipped") or body.new_tracking_no or body.new_carrier:
        raise ApiError(422, "invalid_field", "a reshipment needs its own tracking number: use PATCH /tickets/{id}",
                       field="outcome", value="reshipped")  # fmt: skip
    seen: dict[int, int] = {}
    for i, ticket_id in enumerate(body.ids):
        if ticket_id in seen:
            raise ApiError(
                422, "invalid_field", f"ticket {ticket_id} is listed twice (ids[{seen[ticket_id]}])",
                field=f"ids[{i}]", value=ticket_id,
            )  # fmt: skip
        seen[ticket_id] = i
    change = _change(body)
    changed = await _write(ctx, lambda uow: ctx.monitor.tickets.change_many(uow, body.ids, change, who.login))
    rows = await ctx.read(lambda views: views.tickets_by_ids(body.ids))
    return BulkOut(changed=changed, tickets=[TicketOut.of(r) for r in rows])
