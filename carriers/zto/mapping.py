"""Map ZTO trace scans onto the normalized model (pure: no I/O, no clock).

ZTO names a scan by its ``scanType`` text, not a number. ``scanDate`` in epoch milliseconds is a
moment already; a "yyyy-MM-dd HH:mm:ss" date is ZTO's local time, read in Asia/Shanghai. Either is
stored in UTC. A scan type missing from the table keeps ``status=None`` with its raw text, never a guess.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from carriers.model import ExceptionReason, Status, TrackingEvent, TrackingResult
from carriers.zto.schema import Scan

#: Same as ``carriers.zto.client.CODE``.
CARRIER = "zto"
SHANGHAI = ZoneInfo("Asia/Shanghai")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# The scanType values of zto.merchant.waybill.track.query ("扫描类型: 收件、发件、到件、派件、签收、
# 退件、问题件、ARRIVAL（派件入三方自提柜等）、SIGNED（派件出三方自提柜等）", the field description
# of the query's response as public clients copy it from open.zto.com), plus 第三方签收 and 退件签收 of
# ZTO's older trace API (traceInterfaceNewTraces), which clients still see and which name their
# meaning plainly. Uncertain: ZOP's trace *push* uses ARRIVAL and SIGNED for an ordinary arrival
# at a site and an ordinary signature; the query's own description gives them the locker meanings
# used here. ZTO documents no finer cause for 问题件, so its reason is ``other`` (the text says why).
STATUS_BY_CODE: dict[str, Status] = {
    "收件": Status.PICKED_UP,  # 揽收: the courier took the parcel
    "发件": Status.IN_TRANSIT,  # left a site for the next one (preOrNextSite is the next)
    "到件": Status.IN_TRANSIT,  # arrived at a site (preOrNextSite is the previous)
    "派件": Status.OUT_FOR_DELIVERY,  # with the courier for delivery
    "ARRIVAL": Status.AVAILABLE_FOR_PICKUP,  # 派件入三方自提柜等: put into a locker or station
    "签收": Status.DELIVERED,  # signed for
    "SIGNED": Status.DELIVERED,  # 派件出三方自提柜等: taken out of the locker or station
    "第三方签收": Status.DELIVERED,  # older API: signed for by a third party (代签)
    "问题件": Status.EXCEPTION,  # problem parcel
    "退件": Status.RETURNING,  # on its way back to the sender
    "退件签收": Status.RETURNED,  # older API: the returned parcel signed for by the sender
}

#: Why an exception scan type is a problem parcel.
REASON_BY_CODE: dict[str, ExceptionReason] = {
    "问题件": ExceptionReason.OTHER,
}


def parse_scan_date(text: str) -> datetime:
    """Read ``scanDate`` (epoch milliseconds, or Shanghai local time) in UTC; ``ValueError`` if neither."""
    value = text.strip()
    try:
        if value.isascii() and value.isdigit():
            return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
        return datetime.strptime(value, TIME_FORMAT).replace(tzinfo=SHANGHAI).astimezone(UTC)
    except (OverflowError, OSError):  # milliseconds past year 9999, or year 1 in Shanghai
        raise ValueError(f"scanDate out of range: {text[:40]!r}") from None


def to_event(tracking_no: str, scan: Scan) -> TrackingEvent:
    """Normalize one scan; an unknown scan type keeps ``status=None`` rather than a guess."""
    code = scan.scan_type
    location = " ".join(part for part in (scan.site_city, scan.site_name) if part)
    return TrackingEvent(
        carrier=CARRIER,
        tracking_no=tracking_no,
        time=parse_scan_date(scan.scan_date),
        status=STATUS_BY_CODE.get(code),
        raw_code=code,
        raw_text=scan.desc,
        location=location,
        reason=REASON_BY_CODE.get(code),
    )


def to_result(tracking_no: str, scans: list[Scan]) -> TrackingResult:
    """Return the result of one number, events oldest first.

    A scan about another number means the answer is not about ours: ``ValueError``. No scan at all
    is the problem ``no_routes`` (ZTO cannot tell an unknown number from one not scanned yet).
    """
    for scan in scans:
        if scan.bill_code and scan.bill_code != tracking_no:
            raise ValueError(f"result: a scan of {scan.bill_code!r} in the answer about {tracking_no!r}")
    events = sorted((to_event(tracking_no, scan) for scan in scans), key=lambda e: e.time)
    if not events:
        return TrackingResult(CARRIER, tracking_no, problem="no_routes", problem_code="empty_result")
    return TrackingResult(CARRIER, tracking_no, tuple(events))
