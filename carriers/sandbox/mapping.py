"""Map the sandbox carrier's scans onto the normalized model (pure: no I/O, no clock)."""

from __future__ import annotations

from datetime import datetime

from carriers.model import ExceptionReason, Status, TrackingEvent

#: Same as ``carriers.sandbox.client.CODE``; repeated here because the client imports the world.
CARRIER = "sandbox"

# These are the sandbox's own codes, invented for the simulated carrier (no real carrier
# document behind them), shaped like the two-digit scan codes of Chinese express APIs.
STATUS_BY_CODE: dict[str, Status] = {
    "10": Status.PENDING,  # 已下单，待揽收
    "20": Status.PICKED_UP,  # 揽收
    "30": Status.IN_TRANSIT,  # 运输中（到达/发往转运中心）
    "40": Status.OUT_FOR_DELIVERY,  # 派件
    "45": Status.AVAILABLE_FOR_PICKUP,  # 驿站/快递柜待取
    "50": Status.DELIVERED,  # 签收
    "60": Status.DELIVERY_FAILED,  # 派送失败
    "70": Status.EXCEPTION,  # 疑难件（其他）
    "71": Status.EXCEPTION,  # 拒收
    "72": Status.EXCEPTION,  # 丢件
    "80": Status.RETURNING,  # 退回中
    "90": Status.RETURNED,  # 退签
}

#: Why an exception code is a problem parcel.
REASON_BY_CODE: dict[str, ExceptionReason] = {
    "70": ExceptionReason.OTHER,
    "71": ExceptionReason.REFUSED,
    "72": ExceptionReason.LOST,
}


def to_event(tracking_no: str, time: datetime, code: str, text: str, location: str) -> TrackingEvent:
    """Normalize one sandbox scan; an unknown code keeps ``status=None`` rather than a guess."""
    return TrackingEvent(
        carrier=CARRIER,
        tracking_no=tracking_no,
        time=time,
        status=STATUS_BY_CODE.get(code),
        raw_code=code,
        raw_text=text,
        location=location,
        reason=REASON_BY_CODE.get(code),
    )
