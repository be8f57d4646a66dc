"""No password, no token and no whole mobile number anywhere: not in the database's bytes, rows or logs."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import structlog
from sqlalchemy import make_url, text
from sqlmodel import SQLModel

from monitor.clock import SimulatedClock
from monitor.logging import configure
from monitor.people.accounts import People
from monitor.people.auth import TokenAuth, authenticate
from monitor.people.model import CLI
from monitor.people.passwords import Passwords
from monitor.people.tokens import digest
from monitor.store.store import Store

PASSWORD = "pl41ntext-never-Stored"
NEW_PASSWORD = "an0ther-never-Stored"
MOBILE = "13912345678"


def every_row_as_text(store: Store) -> str:
    """Return every row of every table, each cell as text, whatever the backend."""
    cells: list[str] = []
    with store.engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            for row in conn.execute(table.select()):
                cells.extend(str(value) for value in row)
    return "\n".join(cells)


def database_bytes(store: Store) -> bytes:
    """Return the SQLite file and its WAL as bytes, or PostgreSQL's rows as its own text output."""
    url = store.engine.url
    if url.get_backend_name() == "sqlite":
        path = Path(str(make_url(url).database))
        store.engine.dispose()
        return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    with store.engine.connect() as conn:
        names = [t.name for t in SQLModel.metadata.sorted_tables]
        dumped = [conn.execute(text(f"SELECT row_to_json(t)::text FROM {n} t")).scalars().all() for n in names]
    return "\n".join(line for table in dumped for line in table).encode()


def exercise(people: People, store: Store, passwords: Passwords, clock: SimulatedClock, login: str = "li.lei") -> str:
    """Do everything people do with secrets; return the token issued."""
    people.add(login, PASSWORD, by=CLI, display_name="李雷", mobile=MOBILE, role="operator")
    issued = people.issue_token(login, by=CLI, label="laptop")
    auth = TokenAuth(store, clock, "service-token-of-the-test")

    async def use() -> None:
        assert await auth.authenticate(issued.token) is not None
        assert await auth.authenticate(issued.token[:-2] + "xx") is None
        await auth.drain()

    asyncio.run(use())
    assert authenticate(store, login, PASSWORD, passwords) is not None
    assert authenticate(store, login, PASSWORD + "x", passwords) is None
    people.reset_password(login, NEW_PASSWORD, by=CLI)
    people.set_profile(login, by=CLI, mobile="13712345678")
    people.set_profile(login, by=CLI, mobile=MOBILE)
    people.revoke_token(login, issued.token_id, by=CLI)
    return issued.token


def test_nothing_secret_is_stored(people: People, store: Store, passwords: Passwords, clock: SimulatedClock) -> None:
    token = exercise(people, store, passwords, clock)
    rows = every_row_as_text(store)
    assert "li.lei" in rows and digest(token) in rows and "$argon2id$" in rows  # the scan does see the rows
    for secret in (PASSWORD, NEW_PASSWORD, token, token[11:]):
        assert secret not in rows
    raw = database_bytes(store)
    assert b"li.lei" in raw and digest(token).encode() in raw
    for secret in (PASSWORD, NEW_PASSWORD, token, token[11:]):
        assert secret.encode() not in raw, secret[:6]
    activity = [json.loads(line) for line in rows.splitlines() if line.startswith("{") and "actor" in line]
    assert {a["actor"]["login"] for a in activity} == {"cli"}
    assert all(MOBILE not in json.dumps(a) for a in activity)  # the activity log keeps it masked


def test_nothing_secret_is_logged(people: People, store: Store, passwords: Passwords, clock: SimulatedClock) -> None:
    with structlog.testing.capture_logs() as captured:
        token = exercise(people, store, passwords, clock, "li.lei")
    events = json.dumps(captured, default=str, ensure_ascii=False)
    assert "people.account_added" in events and "people.token_revoked" in events
    for secret in (PASSWORD, NEW_PASSWORD, token, token[11:], MOBILE):
        assert secret not in events
    stream = io.StringIO()
    configure("json", "debug", stream)  # and through the production pipeline, rendered
    token = exercise(people, store, passwords, clock, "han")
    rendered = stream.getvalue()
    assert '"people.password_reset"' in rendered and '"login": "han"' in rendered
    for secret in (PASSWORD, NEW_PASSWORD, token, token[11:], MOBILE):
        assert secret not in rendered
