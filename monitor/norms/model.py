"""The learned norms in memory, and the fallback chain that picks one for a parcel.

The table is small (carriers × provinces² × phases at most), so each process loads it once
and asks it per parcel without a query; :meth:`NormBook.refresh` reloads it after learning.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from carriers.model import Status
from monitor.norms.settings import NormSettings
from monitor.rules.ruleset import Thresholds
from monitor.rules.timeline import SILENCE_PHASE
from monitor.store.models import RouteNorm
from monitor.store.store import Store

RN = RouteNorm.__table__
PHASES = ("ship_to_pickup", "pickup_to_first_transit", "transit_gap", "ofd_to_delivered", "total")
#: The fallback chain, most specific first; ``preset`` is never stored (it is the thresholds).
LEVELS = ("route", "region", "carrier", "preset")


@dataclass(frozen=True, slots=True)
class Norm:
    """How long one phase takes at one level of the chain, in seconds."""

    level: str
    carrier: str
    origin_province: str
    dest_province: str
    region_class: str
    phase: str
    p50: float
    p90: float
    p95: float
    p99: float
    samples: int
    learned_at: Any = None
    window_days: int = 0

    def quantile(self, name: str) -> float:
        """Return the quantile ``p50``, ``p90``, ``p95`` or ``p99``."""
        return float(getattr(self, name))

    def as_dict(self) -> dict[str, Any]:
        """Return the norm as plain values (hours for people, seconds kept)."""
        return {
            "level": self.level,
            "carrier": self.carrier,
            "origin_province": self.origin_province or None,
            "dest_province": self.dest_province or None,
            "region_class": self.region_class or None,
            "phase": self.phase,
            "p50_seconds": self.p50,
            "p90_seconds": self.p90,
            "p95_seconds": self.p95,
            "p99_seconds": self.p99,
            "samples": self.samples,
            "learned_at": self.learned_at.isoformat() if self.learned_at is not None else None,
            "window_days": self.window_days,
        }


def preset_norm(carrier: str, region: str, phase: str, t: Thresholds) -> Norm | None:
    """Return the fixed line of the thresholds as a norm of the ``preset`` level (None for ``total``)."""
    hours = {
        "ship_to_pickup": t.pickup_hours,
        "pickup_to_first_transit": t.after_pickup_hours,
        "transit_gap": t.transit_hours.get(region),
        "ofd_to_delivered": t.out_for_delivery_hours,
    }.get(phase)
    if hours is None:
        return None
    s = hours * 3600
    return Norm("preset", carrier, "", "", region, phase, s, s, s, s, 0)


def load_norms(store: Store) -> list[Norm]:
    """Read every learned norm."""
    with store.begin() as uow:
        rows = uow.conn.execute(select(RN).order_by(RN.c.carrier, RN.c.level, RN.c.phase)).all()
    return [_norm(r) for r in rows]


def _norm(r: Any) -> Norm:
    return Norm(
        r.level, r.carrier, r.origin_province, r.dest_province, r.region_class, r.phase,
        r.p50, r.p90, r.p95, r.p99, r.samples, r.learned_at, r.window_days,
    )  # fmt: skip


class NormBook:
    """The learned norms of one process, looked up route → region class → carrier (then the preset)."""

    def __init__(self, norms: Iterable[Norm] = (), settings: NormSettings | None = None) -> None:
        self.settings = settings or NormSettings()
        self._index: dict[tuple[str, str, str, str, str, str], Norm] = {}
        self._gaps: dict[tuple[str, str, str, str], dict[str, float]] = {}
        self.replace(norms)

    @classmethod
    def load(cls, store: Store, settings: NormSettings | None = None) -> NormBook:
        """Build from the ``route_norm`` table."""
        return cls(load_norms(store), settings)

    def refresh(self, store: Store) -> None:
        """Reload the table (after learning): new parcels and new events use the new norms."""
        self.replace(load_norms(store))

    def replace(self, norms: Iterable[Norm]) -> None:
        """Use ``norms`` from now on."""
        self._index = {(n.level, n.carrier, n.origin_province, n.dest_province, n.region_class, n.phase): n
                       for n in norms}  # fmt: skip
        self._gaps = {}

    def __len__(self) -> int:
        return len(self._index)

    def all(self) -> list[Norm]:
        """Return every learned norm."""
        return list(self._index.values())

    def find(self, carrier: str, origin: str | None, dest: str | None, region: str, phase: str) -> Norm | None:
        """Return the most specific learned norm with at least ``min_samples`` samples, or None."""
        enough = self.settings.min_samples
        keys = []
        if origin and dest:
            keys.append(("route", carrier, origin, dest, "", phase))
        keys += [("region", carrier, "", "", region, phase), ("carrier", carrier, "", "", "", phase)]
        for key in keys:
            found = self._index.get(key)
            if found is not None and found.samples >= enough:
                return found
        return None

    def chain(
        self, carrier: str, origin: str | None, dest: str | None, region: str, phase: str, t: Thresholds | None
    ) -> Norm | None:
        """Return the norm that applies, the preset's fixed line when nothing learned has enough samples."""
        found = self.find(carrier, origin, dest, region, phase)
        if found is None and t is not None:
            found = preset_norm(carrier, region, phase, t)
        return found

    def explain(self, row: Any) -> tuple[float, int] | None:
        """Return (usual silence in seconds, samples) of the norm behind a parcel's slow_for_route alert.

        Looked up when the alert is worded, from the parcel's route and status then (an anomaly
        whose parcel moved on is resolved before anyone is told).
        """
        try:
            phase = SILENCE_PHASE.get(Status(row.status))
        except ValueError:
            return None
        norm = None if phase is None else self.find(
            row.carrier, row.origin_province, row.destination_province, row.region_class, phase
        )  # fmt: skip
        return None if norm is None else (norm.quantile(self.settings.quantile), norm.samples)

    def gaps(self, carrier: str, origin: str | None, dest: str | None, region: str) -> dict[str, float]:
        """Return the learned silence (the configured quantile, seconds) per phase for a route; cached."""
        key = (carrier, origin or "", dest or "", region)
        found = self._gaps.get(key)
        if found is None:
            q = self.settings.quantile
            found = {}
            for phase in PHASES[:-1]:
                norm = self.find(carrier, origin, dest, region, phase)
                if norm is not None:
                    found[phase] = norm.quantile(q)
            self._gaps[key] = found
        return found
