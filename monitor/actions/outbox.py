"""The outbox dispatcher: claim due actions, run their handler, retry with backoff.

Handlers are idempotent and finish their action in the same transaction as their local
effect (a ticket row, an activity line), so a crash at any point means a retry, never a
duplicate. External calls (carrier intercepts) carry the action's idempotency key. A claim
is one conditional statement, so two processes never run the same action at once; every
database call goes through the store's threads (``Store.transact``), never the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog

from monitor.clock import Clock
from monitor.store.store import Store

log = structlog.get_logger("monitor.outbox")

LEASE = timedelta(minutes=2)
BASE_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(hours=1)
MAX_ATTEMPTS = 12


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a handler made of an action: done (already finished by it), retry or give up."""

    done: bool
    retryable: bool = False
    error: str = ""


DONE = Outcome(done=True)


def retry(error: str) -> Outcome:
    """Ask for another attempt later."""
    return Outcome(done=False, retryable=True, error=error)


def give_up(error: str) -> Outcome:
    """Stop trying: the failure will not go away by itself."""
    return Outcome(done=False, retryable=False, error=error)


Handler = Callable[[Any], Awaitable[Outcome]]


def backoff(attempts: int) -> timedelta:
    """Return the wait before attempt ``attempts + 1``: 30 s doubling, capped at 1 h."""
    return min(BASE_DELAY * (2 ** max(attempts - 1, 0)), MAX_DELAY)


class Dispatcher:
    """Run the outbox until nothing is due."""

    def __init__(self, store: Store, clock: Clock, handlers: dict[str, Handler], batch: int = 200) -> None:
        self.store = store
        self.clock = clock
        self.handlers = handlers
        self.batch = batch
        #: Set on shutdown: the action in hand finishes, the rest waits for the next process.
        self.stopping = False

    async def run(self, keys: Sequence[str] | None = None) -> int:
        """Perform every due action (only those with ``keys`` if given); return how many ran."""
        ran = 0
        while not self.stopping:
            now = self.clock.now()
            claimed = await self.store.transact(lambda uow, now=now: uow.claim_actions(now, self.batch, LEASE, keys))
            if not claimed:
                return ran
            for i, action in enumerate(claimed):
                if self.stopping:  # shutting down: give the rest of the claim back for the next process
                    rest = [a.id for a in claimed[i:]]
                    await self.store.transact(lambda uow, rest=rest: uow.release_actions(rest))
                    return ran
                await self._perform(action)
                ran += 1
                await asyncio.sleep(0)  # a backlog must not keep the API waiting: let the loop breathe
        return ran

    async def _perform(self, action: Any) -> None:
        handler = self.handlers.get(action.kind)
        if handler is None:
            outcome = give_up(f"no handler for action kind {action.kind!r}")
        else:
            try:
                outcome = await handler(action)
            except Exception as err:
                log.exception("action.crashed", kind=action.kind, key=action.idempotency_key)
                outcome = retry(f"{type(err).__name__}: {err}")
        if outcome.done:
            return
        now = self.clock.now()
        final = not outcome.retryable or action.attempts >= MAX_ATTEMPTS
        at = now if final else now + backoff(action.attempts)
        await self.store.transact(lambda uow: uow.retry_action(action.id, at, outcome.error, final))
        event = "action.failed" if final else "action.retry"
        log.warning(event, kind=action.kind, key=action.idempotency_key, attempts=action.attempts, error=outcome.error)
