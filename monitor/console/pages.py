"""The console's pages: login, 工作台 (the work queue) and 包裹 (one parcel), rendered on the server.

Every page reads through ``ctx.read`` and every change through ``ctx.store.transact`` /
``ctx.offload``, off the event loop like the API. A change needs a session, its CSRF token
(hidden field ``csrf`` or header ``X-CSRF-Token``) and the role's permission; it runs while
acting as the session's principal, so activity rows name who did it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import select
from starlette.datastructures import FormData

from monitor.api.context import ApiContext
from monitor.api.parcels import _detail as parcel_detail
from monitor.api.schemas import TicketOut
from monitor.console import sessions
from monitor.console.catalog import DEFAULT, LANGUAGES, translator
from monitor.console.configview import effective
from monitor.people import passwords
from monitor.people.accounts import People
from monitor.people.audit import acting_as
from monitor.people.errors import PeopleError
from monitor.people.model import Role
from monitor.people.roles import Permission, can
from monitor.rules.ruleset import SEVERITIES
from monitor.store.store import P, UnitOfWork
from monitor.store.views import Views
from monitor.store.views import read as read_views
from monitor.tickets import UNSET, TicketChange
from monitor.tickets.book import TITLES
from monitor.tickets.errors import TicketError
from monitor.tickets.model import OUTCOME_LABELS, Outcome
from monitor.tickets.reshipment import reship
from monitor.tickets.store import TicketRows

router = APIRouter(include_in_schema=False)
LANG_COOKIE = "pm_lang"
PAGE = 100
MAX_BULK = 500
TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("monitor.console", "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
)


async def _form(request: Request) -> FormData:
    """Read an urlencoded form (the console posts no files), once per request."""
    cached: FormData | None = getattr(request.state, "console_form", None)
    if cached is None:
        raw = (await request.body()).decode("utf-8", errors="replace")
        cached = FormData(parse_qsl(raw, keep_blank_values=True, max_num_fields=MAX_BULK + 20))
        request.state.console_form = cached
    return cached


def _ctx(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


def _lang(request: Request) -> str:
    wanted = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE) or DEFAULT
    return wanted if wanted in LANGUAGES else DEFAULT


def _span(delta: timedelta) -> str:
    minutes = int(abs(delta.total_seconds()) // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    return f"{days}d {hours}h" if days else f"{hours}h {mins}m"


def _render(request: Request, name: str, status: int = 200, session: sessions.Session | None = None,
            **values: Any) -> HTMLResponse:  # fmt: skip
    ctx = _ctx(request)
    lang = _lang(request)
    t = translator(lang)
    now = ctx.clock.now()

    def local(value: datetime | None) -> str:
        return "" if value is None else value.astimezone(ctx.timezone).strftime("%Y-%m-%d %H:%M")

    def sla(due: datetime | None) -> str:
        if due is None:
            return t("no_sla")
        return t("left", span=_span(due - now)) if due > now else t("late", span=_span(now - due))

    def age(since: datetime) -> str:
        return _span(now - since)

    def rule_label(rule: str) -> str:
        return _rule_label(lang, rule)

    values.setdefault("message", "")
    html = TEMPLATES.get_template(name).render(
        t=t, lang=lang, other="en" if lang == "zh" else "zh", local=local, sla=sla, now=now, session=session,
        age=age, rule_label=rule_label,
        can_act=session is not None and can(session.principal, Permission.TICKETS),
        can_users=session is not None and can(session.principal, Permission.USERS), path=request.url.path,
        quote=quote, **values,
    )  # fmt: skip
    response = HTMLResponse(html, status_code=status)
    if session is not None and (token := request.cookies.get(sessions.COOKIE)):
        _session_cookie(response, request, token)  # sliding: 12 h from the last page, as the server's idle limit
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", httponly=True)
    return response


def _rule_label(lang: str, rule: str) -> str:
    """Return a rule's Chinese name (monitor.tickets.book.TITLES) on a Chinese page, its id otherwise."""
    return TITLES.get(rule, rule) if lang == "zh" else rule


def _session_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(sessions.COOKIE, token, httponly=True, samesite="strict", path="/",
                        max_age=int(sessions.IDLE.total_seconds()),
                        secure=sessions.secure_cookie(request.url.scheme))  # fmt: skip


async def _session(request: Request) -> sessions.Session | None:
    token = request.cookies.get(sessions.COOKIE)
    if not token or len(token) > 200:
        return None
    ctx = _ctx(request)
    return await ctx.offload(sessions.check, ctx.store, token, ctx.wall_now())


def _to_login(request: Request) -> RedirectResponse:
    back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse("/login?" + urlencode({"next": back}), status_code=303)


def _safe_next(value: str | None) -> str:
    """Only a path of ours: never an absolute URL an attacker could send someone to after login."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/queue"
    return value


async def _acting(request: Request, permission: Permission) -> tuple[sessions.Session | None, Response | None]:
    """Return the session of a state-changing request, or the answer refusing it (login, CSRF, role)."""
    session = await _session(request)
    if session is None:
        return None, _to_login(request)
    form = await _form(request)
    presented = request.headers.get("x-csrf-token") or str(form.get("csrf") or "")
    if not sessions.csrf_ok(session, presented):
        return None, _render(request, "message.html", 403, session, message=translator(_lang(request))("csrf"))
    if not can(session.principal, permission):
        t = translator(_lang(request))
        return None, _render(request, "message.html", 403, session,
                             message=t("forbidden", role=session.principal.role.value))  # fmt: skip
    return session, None


async def _write(ctx: ApiContext, session: sessions.Session, work: Callable[[UnitOfWork], Any]) -> str | None:
    """Run one change as the session's principal; return why it was refused, or None."""
    with acting_as(session.principal):
        try:
            await ctx.store.transact(work)
        except TicketError as err:
            return err.message
    return None


# -- login ---------------------------------------------------------------------------------


@router.get("/")
async def home(request: Request) -> Response:
    """Send people to their queue (or to the login page first)."""
    return RedirectResponse("/queue", status_code=303)


@router.get("/login")
async def login_page(request: Request, message: str = "") -> Response:
    """Show the login form, with a fresh double-submit token."""
    token = sessions.new_login_csrf()
    response = _render(request, "login.html", message=message, login_csrf=token,
                       next=_safe_next(request.query_params.get("next")))  # fmt: skip
    response.set_cookie(sessions.LOGIN_COOKIE, token, httponly=True, samesite="strict", path="/login",
                        secure=sessions.secure_cookie(request.url.scheme))  # fmt: skip
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the password; lock the login after repeated failures; open a session."""
    ctx = _ctx(request)
    form = await _form(request)
    t = translator(_lang(request))
    cookie = request.cookies.get(sessions.LOGIN_COOKIE, "")
    if not cookie or not sessions.hmac.compare_digest(cookie.encode(), str(form.get("csrf") or "").encode()):
        return _render(request, "message.html", 403, message=t("csrf"))
    login_name, password = str(form.get("login") or "")[:64], str(form.get("password") or "")[:1024]
    result = await ctx.offload(sessions.log_in, ctx.store, login_name, password, ctx.wall_now())
    if result.token is None:
        message = t("locked", minutes=sessions.LOCK_FOR.seconds // 60) if result.locked else t("login_failed")
        token = sessions.new_login_csrf()
        response = _render(request, "login.html", 401, message=message, login_csrf=token,
                           next=_safe_next(str(form.get("next") or "")))  # fmt: skip
        response.set_cookie(sessions.LOGIN_COOKIE, token, httponly=True, samesite="strict", path="/login",
                            secure=sessions.secure_cookie(request.url.scheme))  # fmt: skip
        return response
    response = RedirectResponse(_safe_next(str(form.get("next") or "")), status_code=303)
    _session_cookie(response, request, result.token)
    response.delete_cookie(sessions.LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session (its token is revoked), then back to the login page."""
    session, refused = await _acting(request, Permission.READ)
    if refused is not None:
        return refused
    assert session is not None
    ctx = _ctx(request)
    await ctx.offload(sessions.log_out, ctx.store, session, ctx.wall_now())
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(sessions.COOKIE, path="/")
    return response


# -- 工作台 ---------------------------------------------------------------------------------

FILTERS = ("rule", "shop", "carrier", "assignee", "severity")


def _queue_filters(request: Request, login: str) -> tuple[str, dict[str, Any]]:
    """Read the queue's view (mine / unassigned / all) and filters from the query string."""
    query = request.query_params
    view = query.get("view", "mine")
    view = view if view in ("mine", "unassigned", "all") else "mine"
    filters: dict[str, Any] = {k: (query.get(k) or "").strip()[:64] or None for k in FILTERS}
    if filters["severity"] not in SEVERITIES:  # the page offers only these: anything else filters nothing
        filters["severity"] = None
    if view == "mine":
        filters["assignee"] = login
    elif view == "unassigned":
        filters["assignee"] = ""
    elif filters["assignee"] is not None:
        filters["assignee"] = filters["assignee"].lower()
    filters["overdue_at"] = _ctx(request).clock.now() if query.get("overdue") else None
    return view, filters


def _queue_data(views: Views, filters: dict[str, Any]) -> dict[str, Any]:
    page = views.tickets(state="active", **filters, limit=PAGE)
    counts: dict[str, int] = {}
    for (rule, _severity), n in views.active_anomalies_by_rule().items():
        counts[rule] = counts.get(rule, 0) + n
    return {"tickets": [TicketOut.of(r) for r in page.rows], "more": page.next_key is not None,
            "counts": dict(sorted(counts.items()))}  # fmt: skip


@router.get("/queue")
async def queue(request: Request) -> Response:
    """The work queue: my tickets or the unassigned ones, most money at stake first, then oldest."""
    session = await _session(request)
    if session is None:
        return _to_login(request)
    view, filters = _queue_filters(request, session.principal.login)
    data = await _ctx(request).read(lambda views: _queue_data(views, filters))
    newest = max((ticket.id for ticket in data["tickets"]), default=0)
    query = request.query_params
    kept = urlencode([(k, v) for k, v in query.multi_items() if k not in ("message", "sig", "after", "lang")])
    return _render(request, "queue.html", session=session, view=view, query=query, kept=kept, newest=newest,
                   outcomes=OUTCOME_LABELS, message=_message(request, session), severities=SEVERITIES,
                   can_anomalies=can(session.principal, Permission.ANOMALIES), **data)  # fmt: skip


@router.get("/queue/poll.json")
async def queue_poll(request: Request) -> Response:
    """Counts per rule and tickets newer than ``after`` in this view: the page polls it every few seconds."""
    session = await _session(request)
    if session is None:
        return JSONResponse({"error": "login"}, status_code=401)
    _view, filters = _queue_filters(request, session.principal.login)
    after = request.query_params.get("after", "0")
    last = int(after) if after.isdigit() and len(after) < 11 else 0
    data = await _ctx(request).read(lambda views: _queue_data(views, filters))
    ctx = _ctx(request)
    fresh = [
        {"id": t.id, "title": t.title, "rule": t.rule, "tracking_no": t.parcel.tracking_no,
         "carrier": t.parcel.carrier, "stake": t.stake,
         "created_at": t.created_at.astimezone(ctx.timezone).strftime("%Y-%m-%d %H:%M")}
        for t in data["tickets"] if t.id > last
    ]  # fmt: skip
    lang = _lang(request)
    labels = {rule: _rule_label(lang, rule) for rule in {*data["counts"], *(t["rule"] for t in fresh)}}
    return JSONResponse({"counts": data["counts"], "new": fresh, "labels": labels})


def _acknowledge_behind(ctx: ApiContext, ids: list[int]) -> int:
    """Acknowledge the open anomalies the tickets ``ids`` were opened for; return how many (blocking)."""
    with read_views(ctx.store) as views:
        anomalies = sorted({t.anomaly_id for t in views.tickets_by_ids(ids) if t.anomaly_id is not None})
    return sum(1 for anomaly_id in anomalies if ctx.monitor.acknowledge(anomaly_id))


@router.post("/queue/bulk")
async def queue_bulk(request: Request) -> Response:
    """Assign or close the ticked tickets, all or nothing (as ``POST /api/v1/tickets/bulk``), or acknowledge.

    Acknowledging (the anomalies behind the ticked tickets) is per anomaly, as on the parcel page:
    one already acknowledged or resolved is left as it is; the message says how many were.
    """
    session, refused = await _acting(request, Permission.TICKETS)
    if refused is not None:
        return refused
    assert session is not None
    form = await _form(request)
    t = translator(_lang(request))
    back = _safe_next(str(form.get("back") or "/queue"))
    raw = [str(v) for v in form.getlist("ids")]
    ids = list(dict.fromkeys(int(v) for v in raw if v.isdigit() and len(v) < 11))[:MAX_BULK]
    action = form.get("action")
    if action == "acknowledge":
        if not can(session.principal, Permission.ANOMALIES):
            return _back(session, back, t("forbidden", role=session.principal.role.value))
        ctx = _ctx(request)
        with acting_as(session.principal):
            done = await ctx.offload(_acknowledge_behind, ctx, ids)
        return _back(session, back, t("acknowledged", n=done))
    if action == "assign":
        who = str(form.get("assignee") or "").strip().lower()
        change = TicketChange(assignee=who or None)
    else:
        outcome = str(form.get("outcome") or Outcome.NOTHING_NEEDED)
        if outcome == Outcome.RESHIPPED:
            return _back(session, back, t("refused", why=t("reship_one")))
        change = TicketChange(state="done", outcome=outcome, note=str(form.get("note") or "")[:500] or None)
    if not ids:
        return _back(session, back, t("changed", n=0))
    ctx = _ctx(request)
    login = session.principal.login
    why = await _write(ctx, session, lambda uow: ctx.monitor.tickets.change_many(uow, ids, change, login))
    return _back(session, back, t("refused", why=why) if why else t("changed", n=len(ids)))


def _back(session: sessions.Session, path: str, message: str) -> RedirectResponse:
    """Go back to ``path`` saying ``message``, signed for this session so no link can put words on our page."""
    joiner = "&" if "?" in path else "?"
    query = urlencode({"message": message, "sig": sessions.sign(session, message)})
    return RedirectResponse(f"{path}{joiner}{query}", status_code=303)


def _message(request: Request, session: sessions.Session) -> str:
    """Return the page's message if this session's own redirect signed it, else nothing."""
    message = request.query_params.get("message", "")
    return message if message and sessions.signed(session, message, request.query_params.get("sig")) else ""


# -- 包裹 -----------------------------------------------------------------------------------


def _find(views: Views, q: str) -> list[Any]:
    """Parcels whose tracking number or order id is ``q``."""
    stmt = select(P.c.carrier, P.c.tracking_no, P.c.order_id, P.c.shop, P.c.status).where(
        (P.c.tracking_no == q) | (P.c.order_id == q)
    )
    return list(views.conn.execute(stmt.order_by(P.c.id.desc()).limit(50)))


@router.get("/parcel")
async def parcel_search(request: Request) -> Response:
    """Search by tracking number or order id; one match opens that parcel."""
    session = await _session(request)
    if session is None:
        return _to_login(request)
    q = (request.query_params.get("q") or "").strip()[:64]
    found = await _ctx(request).read(lambda views: _find(views, q)) if q else []
    if len(found) == 1:
        return RedirectResponse(f"/parcel/{quote(found[0].carrier)}/{quote(found[0].tracking_no)}", status_code=303)
    return _render(request, "search.html", session=session, q=q, found=found)


@router.get("/parcel/{carrier}/{tracking_no}")
async def parcel_page(request: Request, carrier: str, tracking_no: str) -> Response:
    """One parcel: the carrier timeline, anomalies, intercepts, tickets and their history, and the actions."""
    session = await _session(request)
    if session is None:
        return _to_login(request)
    ctx = _ctx(request)
    detail = await ctx.read(
        lambda views: parcel_detail(views, carrier[:64], tracking_no[:64], ctx.monitor.norms, ctx.clock.now())
    )
    if detail is None:
        return _render(request, "search.html", 404, session=session, q=tracking_no, found=[])
    events: dict[int, list[Any]] = {}
    for event in detail.ticket_events:
        events.setdefault(event.ticket_id, []).append(event)
    return _render(request, "parcel.html", session=session, d=detail, events=events, outcomes=OUTCOME_LABELS,
                   message=_message(request, session),
                   can_anomalies=can(session.principal, Permission.ANOMALIES),
                   can_intercept=can(session.principal, Permission.INTERCEPTS))  # fmt: skip


@router.post("/parcel/{carrier}/{tracking_no}/intercept")
async def intercept_now(request: Request, carrier: str, tracking_no: str) -> Response:
    """立即拦截: ask the carrier to stop this parcel now (held if not picked up), at most one open intercept."""
    session, refused = await _acting(request, Permission.INTERCEPTS)
    if refused is not None:
        return refused
    assert session is not None
    ctx, t = _ctx(request), translator(_lang(request))
    back = f"/parcel/{quote(carrier[:64])}/{quote(tracking_no[:64])}"
    parcel = await ctx.read(lambda views: views.parcel(carrier[:64], tracking_no[:64]))
    if parcel is None:
        return _render(request, "search.html", 404, session=session, q=tracking_no, found=[])
    with acting_as(session.principal):
        decision = await ctx.monitor.intercept_now(parcel.id, session.principal.login)
    if decision.decision == "already":
        return _back(session, back, t("intercept_already", state=decision.reason))
    if decision.decision == "skipped":
        return _back(session, back, t("refused", why=t("intercept_" + decision.reason)))
    return _back(session, back, t("intercept_done", state=decision.decision))


def _parcel_path(form: Any) -> str:
    return f"/parcel/{quote(str(form.get('carrier') or ''))}/{quote(str(form.get('tracking_no') or ''))}"


@router.post("/anomaly/{anomaly_id}/{verb}")
async def anomaly_action(request: Request, anomaly_id: int, verb: str) -> Response:
    """Acknowledge or resolve an anomaly by hand."""
    session, refused = await _acting(request, Permission.ANOMALIES)
    if refused is not None:
        return refused
    assert session is not None
    ctx, form, t = _ctx(request), await _form(request), translator(_lang(request))
    with acting_as(session.principal):
        if verb == "acknowledge":
            done = await ctx.offload(ctx.monitor.acknowledge, anomaly_id)
        elif verb == "resolve":
            done = await ctx.offload(ctx.monitor.resolve, anomaly_id, "manual")
        else:
            return _render(request, "message.html", 404, session, message=t("error"))
    return _back(session, _parcel_path(form), t("saved") if done else t("refused", why=f"{verb}: {anomaly_id}"))


@router.post("/ticket/{ticket_id}/close")
async def ticket_close(request: Request, ticket_id: int) -> Response:
    """Close a ticket with an outcome; 已补发 also watches the new parcel (as ``PATCH /api/v1/tickets/{id}``)."""
    session, refused = await _acting(request, Permission.TICKETS)
    if refused is not None:
        return refused
    assert session is not None
    ctx, form, t = _ctx(request), await _form(request), translator(_lang(request))
    back = _parcel_path(form)
    outcome = str(form.get("outcome") or "")
    if outcome not in OUTCOME_LABELS:
        return _back(session, back, t("refused", why=f"{t('outcome')}: {outcome!r}"))
    new_carrier = str(form.get("new_carrier") or "").strip()[:32]
    new_tracking = str(form.get("new_tracking_no") or "").strip()[:64]
    if outcome == Outcome.RESHIPPED and not (new_carrier and new_tracking):
        return _back(session, back, t("refused", why=f"{t('new_carrier')} / {t('new_tracking_no')}"))
    change = TicketChange(state="done", outcome=outcome, note=str(form.get("note") or "")[:500] or None,
                          assignee=UNSET)  # fmt: skip
    login = session.principal.login

    def work(uow: UnitOfWork) -> None:
        ctx.monitor.tickets.change(uow, ticket_id, change, login)
        if outcome == Outcome.RESHIPPED:
            ticket = TicketRows(uow).get(ticket_id)
            reship(uow, ctx.monitor.shipments, ticket, new_carrier, new_tracking, login, ctx.adapters,
                   record=ctx.monitor.tickets.record)  # fmt: skip

    why = await _write(ctx, session, work)  # a refused replacement (unknown carrier, taken number) rolls back
    return _back(session, back, t("refused", why=why) if why else t("saved"))


# -- 用户 (the first part of 设置) -------------------------------------------------------------


async def _admin_page(request: Request) -> tuple[sessions.Session | None, Response | None]:
    """Return the session of an admin reading a 设置 page, or the answer refusing it (login, role)."""
    session = await _session(request)
    if session is None:
        return None, _to_login(request)
    if not can(session.principal, Permission.USERS):
        t = translator(_lang(request))
        return None, _render(request, "message.html", 403, session,
                             message=t("forbidden", role=session.principal.role.value))  # fmt: skip
    return session, None


async def _users(request: Request, session: sessions.Session, status: int = 200, message: str = "",
                 shown: tuple[str, str] | None = None) -> Response:  # fmt: skip
    """Render the accounts; ``shown`` is (login, password) of a password generated just now, shown this once."""
    ctx = _ctx(request)
    accounts = await ctx.offload(People(ctx.store, ctx.clock).accounts)
    response = _render(request, "users.html", status, session, accounts=accounts, roles=[r.value for r in Role],
                       message=message or _message(request, session), shown=shown)  # fmt: skip
    if shown is not None:  # a password on the page: no cache may keep it, the browser's included
        response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/users")
async def users_page(request: Request) -> Response:
    """Accounts, for an admin: role, enabled or not, working tokens (never a hash; the mobile masked)."""
    session, refused = await _admin_page(request)
    if refused is not None:
        return refused
    assert session is not None
    return await _users(request, session)


def _new_password(form: FormData) -> tuple[str, bool]:
    """Return the password the admin typed, or a generated one (and whether it was generated)."""
    typed = str(form.get("password") or "")
    if form.get("generate") or not typed:
        return passwords.generate(), True
    return typed, False


@router.post("/users")
async def user_add(request: Request) -> Response:
    """Add an account (login, name, role, a password typed or generated and shown once), as done by the admin."""
    session, refused = await _acting(request, Permission.USERS)
    if refused is not None:
        return refused
    assert session is not None
    ctx, form, t = _ctx(request), await _form(request), translator(_lang(request))
    login, name = str(form.get("login") or "")[:64], str(form.get("display_name") or "").strip()[:128]
    password, generated = _new_password(form)
    people, by = People(ctx.store, ctx.clock), session.principal
    try:
        added = await ctx.offload(lambda: people.add(login, password, by=by, display_name=name or None,
                                                      role=str(form.get("role") or Role.VIEWER.value)))  # fmt: skip
    except PeopleError as err:
        return await _users(request, session, 422, t("refused", why=str(err)))
    if generated:
        return await _users(request, session, 201, t("user_added", login=added.login), (added.login, password))
    return _back(session, "/users", t("user_added", login=added.login))


@router.post("/users/{login}")
async def user_change(request: Request, login: str) -> Response:
    """Change an account's role or disable / enable it, recorded as done by the admin."""
    session, refused = await _acting(request, Permission.USERS)
    if refused is not None:
        return refused
    assert session is not None
    ctx, form, t = _ctx(request), await _form(request), translator(_lang(request))
    people, by = People(ctx.store, ctx.clock), session.principal
    action, role = str(form.get("action") or ""), str(form.get("role") or "")
    try:
        if action == "reset":
            password, generated = _new_password(form)
            if generated and login.strip().lower() == by.login:  # it would be shown on a page already logged out
                return _back(session, "/users", t("refused", why=t("type_own_password")))
            revoked = await ctx.offload(lambda: people.reset_password(login, password, by=by, revoke_tokens=True))
            done = t("password_reset", login=login.strip().lower(), n=revoked)
            if login.strip().lower() == by.login:  # their own session went with the rest
                return RedirectResponse("/login", status_code=303)
            if generated:
                return await _users(request, session, 200, done, (login.strip().lower(), password))
            return _back(session, "/users", done)
        if action == "role":
            await ctx.offload(lambda: people.set_role(login, role, by=by))
        elif action in ("disable", "enable"):
            if login == by.login:
                return _back(session, "/users", t("refused", why=t("not_yourself")))
            await ctx.offload(lambda: people.set_disabled(login, action == "disable", by=by))
        else:
            return _back(session, "/users", t("refused", why=action))
    except PeopleError as err:
        return _back(session, "/users", t("refused", why=str(err)))
    return _back(session, "/users", t("saved"))


# -- 设置: the effective configuration -----------------------------------------------------------


@router.get("/settings")
async def settings_page(request: Request) -> Response:
    """The configuration the daemon runs with, read-only, every secret masked (admins only)."""
    session, refused = await _admin_page(request)
    if refused is not None:
        return refused
    assert session is not None
    config = _ctx(request).config
    entries = effective(config) if config is not None else []
    sections: dict[str, list[Any]] = {}
    for entry in entries:
        sections.setdefault(entry.key.split(".", 1)[0].split("[", 1)[0], []).append(entry)
    response = _render(request, "settings.html", session=session, sections=sections,
                       source=config.source if config is not None else "")  # fmt: skip
    response.headers["Cache-Control"] = "no-store"
    return response
