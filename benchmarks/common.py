"""Helpers shared by the B3–B5 benchmark scripts: paths, databases, figures and the verdict line.

Each script prints its figures as plain text (``label: value``), the goal and whether it was
met, then one final line of JSON with the same figures for a machine to read.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: Trees named in PYTHONPATH (a base checkout for a before/after comparison) come before this one.
_GIVEN = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
if str(ROOT) not in sys.path:  # benchmarks.run (and the kit, without an install) are imported from the checkout
    sys.path.insert(min(1 + len(_GIVEN), len(sys.path)), str(ROOT))

try:  # after the checkout is on the path; a checkout from before the KPI room keeps it at monitor/reports.py
    from monitor.kpi import reports
except ImportError:  # pragma: no cover
    from monitor import reports  # type: ignore[no-redef,attr-defined]

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def say(message: str) -> None:
    """Progress, to stderr."""
    print(message, file=sys.stderr, flush=True)


@dataclass
class Database:
    """A database for one run: its URL, and how to throw it away afterwards."""

    backend: str
    url: str
    cleanup: Callable[[], None]


def open_database(database_url: str | None, tmp: Path, name: str = "bench.db") -> Database:
    """A fresh SQLite file in ``tmp`` by default; for a PostgreSQL URL a schema of its own, dropped at the end."""
    if not database_url or database_url.startswith("sqlite"):
        path = tmp / name
        return Database("sqlite", database_url or f"sqlite:///{path}", lambda: None)
    from benchmarks.run import open_database as open_pg

    db = open_pg("postgresql", database_url, tmp)
    return Database("postgresql", db.url, db.cleanup)


def temp_dir(prefix: str) -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix=prefix)


@dataclass
class Report:
    """Figures in the order they were measured, printed as text and as one JSON line."""

    name: str
    figures: dict[str, Any] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    goals: dict[str, bool] = field(default_factory=dict)

    def add(self, key: str, value: Any, text: str | None = None) -> None:
        self.figures[key] = value
        line = f"{key}: {text if text is not None else value}"
        self.lines.append(line)
        say("  " + line)

    def goal(self, key: str, met: bool, text: str) -> None:
        self.goals[key] = met
        line = f"goal {text}: {'met' if met else 'MISSED'}"
        self.lines.append(line)
        say("  " + line)

    def note(self, text: str) -> None:
        self.lines.append(text)
        say("  " + text)

    def print(self) -> None:
        print(f"== {self.name} ==")
        for line in self.lines:
            print(line)
        met = all(self.goals.values()) if self.goals else None
        print(f"all goals met: {met}")
        print(json.dumps({"benchmark": self.name, "goals_met": met, "goals": self.goals, **self.figures},
                         ensure_ascii=False, default=str))  # fmt: skip


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0–100), NaN for no values: the reports' own, so figures compare."""
    value = reports.percentile(sorted_values, p)
    return float("nan") if value is None else value


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (Linux /proc), 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
