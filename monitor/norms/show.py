"""What ``routes show`` and ``GET /api/v1/routes`` answer: the learned table, or the chain for one route."""

from __future__ import annotations

import unicodedata

from monitor.norms.model import PHASES, Norm, NormBook
from monitor.rules.regions import normalize_province
from monitor.rules.ruleset import RuleSet

_LEVEL_ORDER = {"route": 0, "region": 1, "carrier": 2, "preset": 3}


def select_norms(
    book: NormBook, rules: RuleSet, carrier: str | None = None, origin: str | None = None, dest: str | None = None
) -> list[Norm]:
    """Return the learned norms (of ``carrier``), or — given both provinces — the norm each phase uses on that route.

    Raises:
        ValueError: a province is unknown, or only one of the two is given (the message names it).
    """
    if (origin is None) != (dest is None):
        raise ValueError("--from and --to: give both provinces, or neither")
    norms = [n for n in book.all() if carrier is None or n.carrier == carrier]
    if origin is None or dest is None:
        return sorted(norms, key=lambda n: (n.carrier, _LEVEL_ORDER[n.level], n.origin_province, n.dest_province,
                                            n.region_class, PHASES.index(n.phase)))  # fmt: skip
    try:
        o = normalize_province(origin)
    except ValueError as err:
        raise ValueError(f"--from: {err}") from None
    try:
        d = normalize_province(dest)
    except ValueError as err:
        raise ValueError(f"--to: {err}") from None
    region = rules.regions.classify(o, d)
    carriers = [carrier] if carrier else sorted({n.carrier for n in book.all()})
    found = []
    for c in carriers:
        t = rules.thresholds(c, "")
        for phase in PHASES:
            norm = book.chain(c, o, d, region, phase, t)
            if norm is not None:
                found.append(norm)
    return found


def where(n: Norm) -> str:
    """Return what a norm is about: ``浙江→四川``, ``cross_province`` or ``*``."""
    if n.level == "route":
        return f"{n.origin_province}→{n.dest_province}"
    if n.region_class:
        return n.region_class
    return "*"


def render(norms: list[Norm]) -> str:
    """Return a table of norms in hours, one line each, for a terminal."""
    if not norms:
        return "no route norms learned yet (`parcel-monitor routes learn` learns them from delivered parcels)"
    head = ("carrier", "level", "route", "phase", "p50 h", "p90 h", "p95 h", "p99 h", "samples")
    rows = [head] + [
        (n.carrier, n.level, where(n), n.phase, *(f"{n.quantile(q) / 3600:.1f}" for q in ("p50", "p90", "p95", "p99")),
         str(n.samples))
        for n in norms
    ]  # fmt: skip
    widths = [max(_width(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join(
        "  ".join(cell + " " * (w - _width(cell)) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
