"""Bearer tokens → principals: the service token, users' tokens, and every way a token is refused."""

from __future__ import annotations

import asyncio
import hmac
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from monitor.clock import SimulatedClock
from monitor.people import tokens
from monitor.people.accounts import People
from monitor.people.auth import TokenAuth
from monitor.people.errors import AccountDisabled, UnknownToken
from monitor.people.model import CLI, SERVICE, Principal, Role
from monitor.people.store import TOK
from monitor.store.store import Store

SERVICE_TOKEN = "service-token-0c1f2e"


def last_used(store: Store, token_id: str) -> Any:
    with store.engine.connect() as conn:
        return conn.execute(select(TOK.c.last_used_at).where(TOK.c.token_id == token_id)).scalar_one()


@pytest.fixture
def auth(store: Store, clock: SimulatedClock) -> TokenAuth:
    return TokenAuth(store, clock, SERVICE_TOKEN)


def test_tokens_look_alike_and_never_repeat() -> None:
    made = {tokens.new_token() for _ in range(200)}
    assert len(made) == 200
    assert all(t.startswith("pm_") and len(t) == tokens.LENGTH == 46 for t in made)
    one = next(iter(made))
    assert tokens.token_id(one) == one[3:11] and tokens.token_id("pm_short") is None


def test_the_service_token_is_the_service_principal(auth: TokenAuth) -> None:
    assert asyncio.run(auth.authenticate(SERVICE_TOKEN)) == SERVICE
    assert TokenAuth(auth.store, auth.clock, None).check("")[0] is None  # no configured token: nothing matches ""


def test_a_users_token_is_that_user(people: People, auth: TokenAuth) -> None:
    added = people.add("li.lei", "password-1", by=CLI, role="operator")
    issued = people.issue_token("li.lei", by=CLI, label="laptop")
    principal = asyncio.run(auth.authenticate(issued.token))
    assert principal == Principal(added.id, "li.lei", Role.OPERATOR, issued.token_id)
    assert issued.token not in repr(issued)


def test_a_role_change_applies_to_the_next_request(people: People, auth: TokenAuth) -> None:
    people.add("li.lei", "password-1", by=CLI, role="viewer")
    issued = people.issue_token("li.lei", by=CLI)
    assert auth.check(issued.token)[0].role is Role.VIEWER  # type: ignore[union-attr]
    people.set_role("li.lei", "admin", by=CLI)
    assert auth.check(issued.token)[0].role is Role.ADMIN  # type: ignore[union-attr]


def test_a_disabled_users_tokens_are_refused_and_no_new_one_is_issued(people: People, auth: TokenAuth) -> None:
    people.add("li.lei", "password-1", by=CLI)
    issued = people.issue_token("li.lei", by=CLI)
    people.set_disabled("li.lei", True, by=CLI)
    assert auth.check(issued.token) == (None, False)
    with pytest.raises(AccountDisabled):
        people.issue_token("li.lei", by=CLI)
    people.set_disabled("li.lei", False, by=CLI)
    assert auth.check(issued.token)[0] is not None


def test_a_revoked_token_is_refused_and_the_others_still_work(people: People, auth: TokenAuth) -> None:
    people.add("li.lei", "password-1", by=CLI)
    first, second = people.issue_token("li.lei", by=CLI), people.issue_token("li.lei", by=CLI)
    people.revoke_token("li.lei", first.token_id, by=CLI)
    assert auth.check(first.token)[0] is None
    assert auth.check(second.token)[0] is not None
    people.revoke_token("li.lei", first.token_id, by=CLI)  # again: harmless
    with pytest.raises(UnknownToken):
        people.revoke_token("li.lei", "nosuchid", by=CLI)
    listed = {t.token_id: t.revoked for t in people.tokens("li.lei")}
    assert listed == {first.token_id: True, second.token_id: False}
    assert [a.tokens for a in people.accounts()] == [1]


def test_wrong_tokens_are_refused_through_compare_digest(
    people: People, auth: TokenAuth, monkeypatch: pytest.MonkeyPatch
) -> None:
    people.add("li.lei", "password-1", by=CLI)
    issued = people.issue_token("li.lei", by=CLI)
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    flipped = issued.token[:-1] + ("A" if issued.token[-1] != "A" else "B")  # the right id, the wrong secret
    unknown_id = "pm_" + "Z" * 43  # the shape of ours, an id nobody has
    for wrong in (flipped, unknown_id, SERVICE_TOKEN[:-1], "", "Bearer " + issued.token):
        compared.clear()
        assert auth.check(wrong) == (None, False), wrong
        assert compared and compared[0][1] == SERVICE_TOKEN.encode()  # the service token: compare_digest, always
    compared.clear()
    auth.check(flipped)
    digests = [pair for pair in compared if len(pair[0]) == 64]
    assert digests and digests[0][0] == tokens.digest(flipped).encode()  # a digest, compared in constant time
    compared.clear()
    auth.check(unknown_id)
    assert [len(a) for a, _ in compared if len(a) == 64] == [64]  # unknown id: a dummy digest, the same work


def test_last_used_is_written_at_most_once_a_minute(people: People, auth: TokenAuth, clock: SimulatedClock) -> None:
    people.add("li.lei", "password-1", by=CLI)
    issued = people.issue_token("li.lei", by=CLI)
    assert last_used(auth.store, issued.token_id) is None

    async def use(times: int) -> None:
        for _ in range(times):
            assert await auth.authenticate(issued.token) is not None
        await auth.drain()

    asyncio.run(use(5))
    first = last_used(auth.store, issued.token_id)
    assert first == clock.now()
    clock.advance(timedelta(seconds=50))
    asyncio.run(use(3))
    assert last_used(auth.store, issued.token_id) == first  # within the minute: not written again
    clock.advance(timedelta(seconds=15))
    asyncio.run(use(1))
    assert last_used(auth.store, issued.token_id) == clock.now()
    assert [t.last_used_at for t in people.tokens("li.lei")] == [clock.now()]
