"""A deterministic simulated carrier world, so the demo shows every kind of problem parcel.

Each number gets its own ``random.Random`` seeded from a stable hash of (seed, number), so
the same settings always tell the same story. A parcel's whole timeline is drawn once from
``shipped_at`` and then cut at ``now``: a later ``now`` only ever adds events.
"""

from __future__ import annotations

import hashlib
import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from carriers.model import InterceptResult, TrackingEvent
from carriers.sandbox.mapping import to_event
from carriers.sandbox.settings import SandboxSettings

SHANGHAI = ZoneInfo("Asia/Shanghai")
FATES = ("fine", "never_picked_up", "stall_in_transit", "delivery_failed", "returned", "lost")
#: Sorting hubs as (city, hub); a route runs through 2–5 of them.
HUBS = (
    ("杭州市", "杭州转运中心"),
    ("上海市", "上海分拨中心"),
    ("广州市", "广州转运中心"),
    ("深圳市", "深圳转运中心"),
    ("北京市", "北京分拨中心"),
    ("武汉市", "武汉转运中心"),
    ("郑州市", "郑州转运中心"),
    ("成都市", "成都转运中心"),
    ("南京市", "南京转运中心"),
    ("西安市", "西安转运中心"),
)
AREAS = ("城东", "城西", "城南", "城北", "开发区", "高新区")
ROADS = ("人民路", "解放路", "中山路", "建设路", "文化路", "和平路")
COURIERS = ("王师傅", "李师傅", "张师傅", "刘师傅", "陈师傅", "杨师傅")
REJECTIONS = ("已派送中，无法拦截", "网点暂不支持拦截")


class _Trail:
    """Collect one parcel's scans, each a random number of hours after the previous one."""

    def __init__(self, tracking_no: str, start: datetime, rng: random.Random) -> None:
        self.tracking_no = tracking_no
        self.time = start
        self.rng = rng
        self.events: list[TrackingEvent] = []

    def scan(self, hours: tuple[float, float], code: str, city: str, text: str, location: str) -> None:
        """Add a scan ``hours`` (min, max) after the last one, in whole minutes."""
        self.time += timedelta(minutes=self.rng.randint(round(hours[0] * 60), round(hours[1] * 60)))
        self.events.append(to_event(self.tracking_no, self.time, code, f"【{city}】{text}", location))


def _hops(route: list[tuple[str, str]], dest_outlet: str, rng: random.Random) -> list[tuple[str, str, str]]:
    """Lay out 2–5 transit scans (city, text, hub) along the hubs, as real sorting scans read."""
    hops: list[tuple[str, str, str]] = []
    for i, (city, hub) in enumerate(route):
        if i > 0 or rng.random() < 0.5:
            hops.append((city, f"快件已到达{hub}", hub))
        onward = route[i + 1][1] if i + 1 < len(route) else dest_outlet
        if i + 1 < len(route) or rng.random() < 0.5:
            hops.append((city, f"快件已由{hub}发往{onward}", hub))
    return hops[-5:]


class World:
    """What happens to every parcel of the sandbox carrier, decided by the settings' seed."""

    def __init__(self, settings: SandboxSettings) -> None:
        self._settings = settings
        self._shares = [(fate, float(getattr(settings, fate))) for fate in FATES[1:]]
        total = sum(share for _, share in self._shares)
        if total > 1:
            raise ValueError(f"sandbox fate shares add up to {total:.2f}, more than 1")

    def _rng(self, tracking_no: str, purpose: str) -> random.Random:
        """Give each (number, purpose) its own stream, stable across runs and processes."""
        key = f"{self._settings.seed}\x1f{tracking_no}\x1f{purpose}".encode()
        return random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))

    def fate(self, tracking_no: str) -> str:
        """Decide once what will become of a parcel, in the shares the settings ask for."""
        draw = self._rng(tracking_no, "fate").random()
        for fate, share in self._shares:
            if draw < share:
                return fate
            draw -= share
        return "fine"

    def events(
        self, tracking_no: str, shipped_at: datetime, now: datetime, intercepted_at: datetime | None = None
    ) -> list[TrackingEvent]:
        """Return the scans that have happened by ``now``, oldest first.

        An intercept accepted at ``intercepted_at`` turns the parcel around, unless it was
        delivered first: then the carrier's story ends as it would have anyway.
        """
        if shipped_at.utcoffset() is None or now.utcoffset() is None:
            raise ValueError("shipped_at and now must be timezone-aware")
        timeline = self._timeline(tracking_no, shipped_at)
        if intercepted_at is not None:
            timeline = self._turned_back(tracking_no, timeline, intercepted_at)
        return [event for event in timeline if event.time <= now]

    def _turned_back(self, tracking_no: str, timeline: list[TrackingEvent], at: datetime) -> list[TrackingEvent]:
        """Cut the story at an accepted intercept and send the parcel back to the sender."""
        before = [e for e in timeline if e.time <= at]
        if any(e.raw_code in ("50", "90") for e in before) or not before:
            return timeline
        rng = self._rng(tracking_no, "intercept-return")
        last = before[-1]
        trail = _Trail(tracking_no, at.astimezone(SHANGHAI).replace(second=0, microsecond=0), rng)
        trail.scan((1, 6), "80", last.location, "快件已拦截，退回寄件人", last.location)
        trail.scan((36, 96), "90", last.location, "退回件已签收（退签），签收人：寄件人", last.location)
        return before + trail.events

    def intercept_verdict(self, tracking_no: str) -> InterceptResult:
        """Accept an intercept with the configured probability, the same way every time."""
        rng = self._rng(tracking_no, "intercept")
        ref = f"LJ{rng.randint(10**9, 10**10 - 1)}"
        if rng.random() < self._settings.intercept_acceptance:
            return InterceptResult(True, reason="拦截成功，快件将退回", raw_code="0", carrier_ref=ref)
        return InterceptResult(False, reason=rng.choice(REJECTIONS), raw_code="1", carrier_ref=ref)

    def _timeline(self, tracking_no: str, shipped_at: datetime) -> list[TrackingEvent]:
        """Draw a parcel's whole story, independent of ``now`` so cuts of it are prefixes."""
        fate = self.fate(tracking_no)
        if fate == "never_picked_up":
            return []
        rng = self._rng(tracking_no, "timeline")
        route = rng.sample(HUBS, rng.randint(2, 3))
        (origin_city, origin_hub), (dest_city, dest_hub) = route[0], route[-1]
        origin_outlet = f"{origin_city[:-1]}{rng.choice(AREAS)}营业部"
        dest_outlet = f"{dest_city[:-1]}{rng.choice(AREAS)}营业部"
        courier = f"{rng.choice(COURIERS)}，电话：1{rng.randint(30, 99)}****{rng.randint(0, 9999):04d}"
        start = shipped_at.astimezone(SHANGHAI).replace(second=0, microsecond=0)
        trail = _Trail(tracking_no, start, rng)

        trail.scan((61 / 60, 18), "20", origin_city, f"快件已由{origin_outlet}揽收", origin_outlet)
        hops = _hops(route, dest_outlet, rng)
        stops = {"stall_in_transit": rng.randint(1, 2), "lost": rng.randint(1, len(hops))}
        for i, (city, text, hub) in enumerate(hops[: stops.get(fate, len(hops))]):
            trail.scan((2, 8) if i == 0 else (4, 30), "30", city, text, hub)

        if fate == "stall_in_transit":
            return trail.events
        if fate == "lost":
            city, _, hub = hops[stops["lost"] - 1]
            trail.scan((24, 72), "72", city, f"快件在{hub}中转时丢失（丢件），已登记理赔", hub)
            return trail.events
        if fate == "returned":
            trail.scan((3, 10), "71", dest_city, "收件人拒收，快件将退回寄件人", dest_outlet)
            trail.scan((4, 12), "80", dest_city, f"快件退回中，已由{dest_hub}发往{origin_hub}", dest_hub)
            trail.scan((36, 96), "90", origin_city, "退回件已签收（退签），签收人：寄件人", origin_outlet)
            return trail.events

        delivering = f"快件正在派送中，派件员：{courier}"
        trail.scan((2, 10), "40", dest_city, delivering, dest_outlet)
        if fate == "delivery_failed":
            trail.scan((2, 6), "60", dest_city, "派送失败，收件人电话无人接听，将再次派送", dest_outlet)
            trail.scan((20, 26), "40", dest_city, delivering, dest_outlet)
        elif rng.random() < 0.4:
            station = f"菜鸟驿站（{dest_city[:-1]}{rng.choice(ROADS)}店）"
            pickup_code = f"{rng.randint(1, 30)}-{rng.randint(1, 6)}-{rng.randint(1000, 9999)}"
            stored = f"快件已存放至{station}，请凭取件码{pickup_code}取件"
            trail.scan((1, 3), "45", dest_city, stored, station)
            trail.scan((1, 6), "50", dest_city, f"快件已签收，签收人：{station}，已取件", station)
            return trail.events
        trail.scan((1, 6), "50", dest_city, "快件已签收，签收人：本人，感谢使用", dest_outlet)
        return trail.events
