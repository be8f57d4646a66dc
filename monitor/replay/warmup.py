"""Learn route norms before a replay fires anything: from a second file, or from the first part of the same one.

The history is played on its own scratch database, with the same rules and no output, and
the norms are learned from it at its end (``monitor.norms.learn``) — exactly as the nightly
rollup would have learned them on the day the checked part begins. The checked part then
runs on its own database with those norms in memory, so ``slow_for_route`` fires from its
first line. With ``--warmup-until T`` the lines before T are the history and the lines from
T on are the checked part; a parcel shipped before T is history only, so follow in the
checked part only parcels shipped from T on.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event

from monitor.norms.learn import LearnResult, learn
from monitor.norms.model import NormBook
from monitor.norms.settings import NormSettings
from monitor.replay.runner import Replay, _scratch
from monitor.replay.scenario import Step
from monitor.rules.ruleset import RuleSet
from monitor.store.db import make_engine, upgrade
from monitor.store.store import Store


async def learn_from(
    steps: Iterable[Step],
    rules: RuleSet,
    settings: NormSettings | None = None,
    *,
    until: datetime | None = None,
    alerting: Mapping[str, Any] | None = None,
) -> tuple[NormBook, LearnResult]:
    """Play ``steps`` (those before ``until``, when given) silently and return the norms learned at their end.

    Raises:
        ValueError: no line falls before ``until`` (nothing to learn from).
    """
    settings = settings or NormSettings()
    history = [s for s in steps if s.kind != "end" and (until is None or s.at < until)]
    if not history:
        raise ValueError("the warm-up has no lines" + (f" before {until.isoformat()}" if until else ""))
    with tempfile.TemporaryDirectory(prefix="parcel-monitor-warmup-") as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'warmup.db'}")
        event.listen(engine, "connect", _scratch)
        try:
            upgrade(engine)
            store = Store(engine)
            run = Replay(history, rules, (), store, io.StringIO(), alerting)
            try:
                await run.run()
            finally:
                run.close()
            now = until or run.clock.now()
            result = learn(store, now, settings)
            return NormBook.load(store, settings), result
        finally:
            engine.dispose()
