"""``parcel-monitor replay`` on a file: check it whole in a first streaming pass, then play it in a second.

Neither pass keeps the file in memory. A bad line stops the replay (exit 2, its line number)
before anything runs, as it always did; warnings are printed once, by the first pass. A file
that cannot be read twice (standard input) is copied to a temporary file as it is checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import IO, Any

import click

from monitor import config as config_module
from monitor.replay.runner import replay
from monitor.replay.scenario import ScenarioError, Step, Survey, steps, survey
from monitor.replay.warmup import learn_from as learn_from_steps

#: Files of more lines than this get a progress bar (when stderr is a terminal): about five seconds of play.
PROGRESS_LINES = 50_000


def play_file(
    scenario: Any,
    settings: config_module.Settings,
    *,
    strict: bool,
    summary: bool,
    database_url: str | None,
    progress: bool | None,
    alerting: Mapping[str, Any],
    learn_from: Any = None,
    warmup_until: datetime | None = None,
    forecast: bool = False,
) -> None:
    """Check and play ``scenario`` (an open text file) to stdout; exit 2 on a bad line.

    ``learn_from`` (an open file) and ``warmup_until``: learn route norms first from that file
    and/or the lines before that moment, which are then not played (``monitor.replay.warmup``).
    ``forecast``: project the pickup rate hourly against ``[kpi]`` targets (``pickup_rate_forecast`` lines).
    """
    name = scenario.name

    def warn(line: int, message: str) -> None:
        click.echo(f"warning: {name}: line {line}: {message}", err=True)

    with _rereadable(scenario) as (first, again):
        try:
            found = survey(first, strict=strict, warn=warn)
        except ScenarioError as err:
            click.echo(f"error: {name}: {err}", err=True)
            sys.exit(2)
        if not found.steps:
            click.echo(f"error: {name}: the scenario has no lines", err=True)
            sys.exit(2)
        norms = None
        if learn_from is not None or warmup_until is not None:
            history: list[Step] = []
            if learn_from is not None:
                try:
                    history += list(steps(learn_from, strict=False))
                except ScenarioError as err:
                    click.echo(f"error: {learn_from.name}: {err}", err=True)
                    sys.exit(2)
            if warmup_until is not None:
                history += [s for s in steps(again(), strict=False) if s.at < warmup_until]
            try:
                norms, learned = asyncio.run(learn_from_steps(history, settings.rules, settings.norms,
                                                              until=warmup_until, alerting=alerting))  # fmt: skip
            except ValueError as err:
                click.echo(f"error: --learn-from/--warmup-until: {err}", err=True)
                sys.exit(2)
            click.echo(f"warm-up: learned {learned.norms} norm(s) from {learned.parcels} delivered parcel(s)", err=True)
        show = progress if progress is not None else (sys.stderr.isatty() and found.lines > PROGRESS_LINES)
        channels = [c.name for c in settings.channels]
        lines: Iterable[Step] = steps(again(), strict=False)
        if warmup_until is not None:
            lines = (s for s in lines if s.at >= warmup_until)
        with _bar(found, show) as tell:
            coro = replay(lines, settings.rules, sys.stdout, channels=channels,
                          database_url=database_url, summary=summary, alerting=alerting, survey=found,
                          progress=tell, norms=norms,
                          forecast=settings.kpi.pickup_target if forecast else None)  # fmt: skip
            asyncio.run(coro)


@contextlib.contextmanager
def _rereadable(scenario: Any) -> Iterator[tuple[Any, Callable[[], Any]]]:
    """Yield (the lines for the first pass, a function returning them again for the second)."""
    try:
        seekable = scenario.seekable()
    except (AttributeError, OSError, ValueError):
        seekable = False
    if seekable:

        def again() -> IO[str]:
            scenario.seek(0)
            return scenario

        yield scenario, again
        return
    with tempfile.TemporaryFile("w+", encoding="utf-8", prefix="parcel-monitor-replay-") as copy:

        def tee() -> Iterator[str]:
            for text in scenario:
                copy.write(text)
                yield text

        def rewound() -> IO[str]:
            copy.flush()
            copy.seek(0)
            return copy

        yield tee(), rewound


@contextlib.contextmanager
def _bar(found: Survey, show: bool) -> Iterator[Callable[[int], None] | None]:
    """Yield a ``progress(lines)`` that advances a bar on stderr, or None when there is none to show."""
    if not show:
        yield None
        return
    width = max(10, min(40, shutil.get_terminal_size((80, 24)).columns - 50))
    with click.progressbar(length=found.steps, label="replay", file=sys.stderr, width=width,
                           show_eta=True, show_percent=True, item_show_func=None) as bar:  # fmt: skip
        yield bar.update
