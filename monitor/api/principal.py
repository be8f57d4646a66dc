"""Who is calling, and may they: the bearer token → a Principal; its role → allowed or 403.

``current_principal`` is the dependency of the authenticated routers: the configured token is
the service (admin) principal, a user's ``pm_…`` token is that user. It refuses a viewer
every method but GET/HEAD/OPTIONS — the fail-closed floor, so a write route added without
thought still changes nothing for a viewer — and sets the request's actor for the activity
log (:mod:`monitor.people.audit`).
Routes that need more than "operator" declare it: ``dependencies=[allowed(Permission.USERS)]``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request

from monitor.api.auth import Credentials
from monitor.api.context import ApiContext, Ctx
from monitor.api.errors import ApiError
from monitor.people.audit import acting_as
from monitor.people.auth import TokenAuth
from monitor.people.model import Principal, Role
from monitor.people.roles import Permission, can

#: Methods that change nothing: the only ones a viewer may call.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def _forbidden(principal: Principal, what: str) -> ApiError:
    return ApiError(
        403, "forbidden", f"{principal.login} is {principal.role.value}: {what}", field="role", value=principal.role
    )


def token_auth(request: Request, ctx: ApiContext) -> TokenAuth:
    """Return the app's token authenticator, made on first use (it remembers which tokens it touched)."""
    auth: TokenAuth | None = getattr(request.app.state, "token_auth", None)
    if auth is None:
        auth = TokenAuth(ctx.store, ctx.clock, ctx.settings.token)
        request.app.state.token_auth = auth
    return auth


async def current_principal(request: Request, ctx: Ctx, credentials: Credentials) -> AsyncIterator[Principal]:
    """Authenticate the bearer token; refuse a viewer anything but reading; act as the principal meanwhile."""
    principal = None
    if credentials is not None:
        principal = await token_auth(request, ctx).authenticate(credentials.credentials)
    if principal is None:
        if not ctx.settings.token:
            raise ApiError(503, "not_configured", f"no API token configured: set {ctx.settings.token_env}")
        if credentials is None:
            raise _unauthorized("missing 'Authorization: Bearer <token>' header")
        raise _unauthorized("the bearer token is not valid")
    if request.method not in SAFE_METHODS and principal.role is Role.VIEWER:
        raise _forbidden(principal, "a viewer reads and changes nothing")
    request.state.principal = principal
    with acting_as(principal):
        yield principal


#: The principal of the request, for handlers that record or check it themselves.
Who = Annotated[Principal, Depends(current_principal)]


def allowed(permission: Permission) -> Any:
    """Return a dependency refusing (403) a principal whose role does not give ``permission``."""

    async def check(principal: Who) -> Principal:
        if not can(principal, permission):
            raise _forbidden(principal, f"not allowed to {permission.value}")
        return principal

    return Depends(check)
