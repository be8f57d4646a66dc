"""Run a parsed scenario through the real :class:`~monitor.service.Monitor` on simulated time.

Lines at a moment are applied before the sweep of that moment, and the sweep runs at every
whole minute at which something is due — exactly what the daemon's one-minute sweep would
do, but skipping the minutes where nothing happens.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, TextIO

from carriers.sandbox import SandboxCarrier
from monitor.alerts.channels.console import RecordingChannel
from monitor.clock import SimulatedClock
from monitor.replay.scenario import Step, Verdict
from monitor.rules.ruleset import RuleSet
from monitor.service import Monitor
from monitor.store.db import make_engine, upgrade
from monitor.store.store import Store
from monitor.tickets.sla import SlaSettings, SlaWatch

MINUTE = timedelta(minutes=1)
LEAD_KEYS = ("at", "event", "carrier", "tracking_no", "order_id")


def ceil_minute(moment: datetime) -> datetime:
    """Return the first whole minute at or after ``moment``."""
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + MINUTE


class Replay:
    """One scenario run: its clock, its database, its scripted carriers and recorders."""

    def __init__(
        self,
        steps: Sequence[Step],
        rules: RuleSet,
        channels: Sequence[str],
        store: Store,
        out: TextIO,
        alerting: Mapping[str, Any] | None = None,
        sla: SlaSettings | None = None,
    ):
        """``sla`` (``[tickets.sla]``): also tell of overdue tickets at their minute, as the daemon's job does."""
        if not steps:
            raise ValueError("the scenario has no lines")
        self.steps = steps
        self.out = out
        self.display_tz: tzinfo = steps[0].offset
        self.clock = SimulatedClock(steps[0].at)
        carriers = {s.payload.carrier for s in steps if s.kind in ("shipment", "tracking", "intercept_result")}
        self.carriers = {code: SandboxCarrier(self.clock) for code in sorted(carriers)}
        for s in steps:
            if s.kind == "intercept_result":
                self.carriers[s.payload.carrier].expect_verdict_later(s.payload.tracking_no)
        recorders = {name: RecordingChannel(name) for name in channels}
        self.monitor = Monitor(store, rules, self.clock, self.carriers, recorders, **(alerting or {}))
        self.store = store
        self.sla = None
        if sla is not None:
            n = self.monitor.notifier
            self.sla = SlaWatch(store, self.clock, sla, n.channels, n.route, n.quiet_hours)
            self.monitor.tickets.deadline = sla.due  # new and reopened tickets get their deadline
        self.counts: Counter[str] = Counter()
        self.rule_counts: Counter[str] = Counter()
        self._last_activity = 0

    async def run(self) -> None:
        """Play every line, firing time-driven rules in between, up to the ``end`` line."""
        for step in self.steps:
            if step.kind == "end":
                await self._run_until(step.at, inclusive=True)
                break
            await self._run_until(step.at, inclusive=False)
            self.clock.set(step.at)
            await self._apply(step)
            self._flush()

    async def _apply(self, step: Step) -> None:
        if step.kind == "shipment":
            self.monitor.add_shipments([step.payload])
        elif step.kind == "tracking":
            await self.monitor.ingest([step.payload])
        elif step.kind == "refund":
            await self.monitor.refund(step.payload)
            await self.monitor.act()
        elif step.kind == "intercept_result":
            v: Verdict = step.payload
            if not await self.monitor.intercept_verdict(v.carrier, v.tracking_no, v.answer):
                assert v.answer.accepted is not None
                self.carriers[v.carrier].stage_verdict(v.tracking_no, v.answer.accepted, v.answer.reason)

    async def _run_until(self, limit: datetime, inclusive: bool) -> None:
        """Sweep at each minute something falls due, up to ``limit``."""
        previous: datetime | None = None
        while True:
            with self.store.begin() as uow:
                due = uow.earliest_due()
                if self.sla is not None:
                    moments = [m for m in (due, self.sla.next_due(uow, self.clock.now())) if m is not None]
                    due = min(moments, default=None)
            if due is None:
                return
            moment = ceil_minute(max(due, self.clock.now()))
            if moment > limit or (moment == limit and not inclusive) or moment == previous:
                return
            self.clock.set(moment)
            await self.monitor.tick()
            if self.sla is not None:
                await self.sla.run()
            self._flush()
            previous = moment

    def _flush(self) -> None:
        with self.store.begin() as uow:
            rows = uow.activity_after(self._last_activity)
        for row in rows:
            self._last_activity = row.id
            data: dict[str, Any] = json.loads(row.data)
            line = {"at": row.at.astimezone(self.display_tz).isoformat(), "event": row.event}
            line |= {k: data.pop(k, None) for k in LEAD_KEYS[2:]}
            line |= data
            self.counts[row.event] += 1
            if row.event == "anomaly_opened":
                self.rule_counts[data["rule"]] += 1
            self.out.write(json.dumps(line, ensure_ascii=False) + "\n")
        self.out.flush()

    def summary(self) -> dict[str, Any]:
        """Return counts per event and rule, and the scenario's 24-hour pickup rate."""
        with self.store.begin() as uow:
            due, on_time = uow.pickup_counts(self.clock.now())
        return {
            "summary": True,
            "events": dict(sorted(self.counts.items())),
            "rules": dict(sorted(self.rule_counts.items())),
            "pickup_due": due,
            "picked_up_on_time": on_time,
            "pickup_rate_24h": round(on_time / due, 4) if due else None,
        }


async def replay(
    steps: Sequence[Step],
    rules: RuleSet,
    out: TextIO,
    *,
    channels: Sequence[str] = ("console",),
    database_url: str | None = None,
    summary: bool = False,
    alerting: Mapping[str, Any] | None = None,
    sla: SlaSettings | None = None,
) -> Mapping[str, Any]:
    """Replay ``steps`` into ``out``; a fresh SQLite file unless ``database_url`` is given."""
    with tempfile.TemporaryDirectory(prefix="parcel-monitor-replay-") as tmp:
        url = database_url or f"sqlite:///{Path(tmp) / 'replay.db'}"
        engine = make_engine(url)
        try:
            upgrade(engine)
            run = Replay(steps, rules, channels, Store(engine), out, alerting, sla)
            await run.run()
            result = run.summary()
            if summary:
                out.write(json.dumps(result, ensure_ascii=False) + "\n")
            return result
        finally:
            engine.dispose()
