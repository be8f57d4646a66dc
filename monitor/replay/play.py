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
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any

import click

from monitor import config as config_module
from monitor.replay.runner import replay
from monitor.replay.scenario import ScenarioError, Survey, steps, survey

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
) -> None:
    """Check and play ``scenario`` (an open text file) to stdout; exit 2 on a bad line."""
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
        show = progress if progress is not None else (sys.stderr.isatty() and found.lines > PROGRESS_LINES)
        channels = [c.name for c in settings.channels]
        with _bar(found, show) as tell:
            coro = replay(steps(again(), strict=False), settings.rules, sys.stdout, channels=channels,
                          database_url=database_url, summary=summary, alerting=alerting, survey=found,
                          progress=tell)  # fmt: skip
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
