"""Map SF route nodes onto the normalized model (pure: no I/O, no clock).

``acceptTime`` is SF's local time without a zone ("2026-11-11 09:30:00"): it is read in
Asia/Shanghai and stored in UTC. An opCode missing from the table keeps ``status=None`` with its
raw code and text, never a guess.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from carriers.model import ExceptionReason, Status, TrackingEvent, TrackingResult
from carriers.sf.schema import Route, RouteResp

#: Same as ``carriers.sf.client.CODE``.
CARRIER = "sf"
SHANGHAI = ZoneInfo("Asia/Shanghai")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# SF's 路由操作码 (opCode) appendix of the 丰桥 route documents (路由查询 EXP_RECE_SEARCH_ROUTES /
# 路由推送): each code with the remark SF prints for it. Codes marked "seen" are not in that appendix
# but in recorded 丰桥 route answers, where the remark leaves no doubt. 99 and 648 are SF's
# forwarding codes (转寄/退回): SF uses them both for a return to the sender and for a redirect to a
# new address, so either reads as ``returning``; after 648 the parcel travels under a new waybill.
STATUS_BY_CODE: dict[str, Status] = {
    "50": Status.PICKED_UP,  # 顺丰已收件
    "54": Status.PICKED_UP,  # seen: 顺丰速运 已收取快件
    "607": Status.PICKED_UP,  # 代理收件
    "30": Status.IN_TRANSIT,  # 快件在【XXX营业点】已装车/完成分拣，准备发往【XXX集散中心】
    "31": Status.IN_TRANSIT,  # 快件到达【XXX集散中心】
    "36": Status.IN_TRANSIT,  # seen: 快件离开【XXX】，已在发往【XXX】的路上
    "3036": Status.IN_TRANSIT,  # 快件在XXX，准备送往下一站
    "123": Status.IN_TRANSIT,  # 快件正送往顺丰店/站
    "130": Status.IN_TRANSIT,  # 快件到达顺丰店/站
    "44": Status.OUT_FOR_DELIVERY,  # 正在派送途中，请您准备签收（派件人，电话）
    "204": Status.OUT_FOR_DELIVERY,  # seen: 快件交给XXX，正在派送途中
    "70": Status.DELIVERY_FAILED,  # 由于XXX原因 派件不成功
    "33": Status.EXCEPTION,  # 派件异常原因
    "80": Status.DELIVERED,  # 已签收，感谢使用顺丰，期待再次为您服务
    "8000": Status.DELIVERED,  # 在官网"运单资料&签收图"，可查看签收人信息 (only after 签收)
    "99": Status.RETURNING,  # 应客户要求，快件正在转寄中
    "648": Status.RETURNING,  # 快件已退回/转寄，新单号为：XXX
}

#: Why an exception opCode is a problem parcel; 33 names its cause only in the remark.
REASON_BY_CODE: dict[str, ExceptionReason] = {
    "33": ExceptionReason.OTHER,
}


def parse_accept_time(text: str) -> datetime:
    """Read SF's ``acceptTime`` in Asia/Shanghai and return it in UTC (``ValueError`` if malformed)."""
    try:
        return datetime.strptime(text.strip(), TIME_FORMAT).replace(tzinfo=SHANGHAI).astimezone(UTC)
    except OverflowError:  # year 1 in Shanghai is before UTC's year 1
        raise ValueError(f"acceptTime out of range: {text!r}") from None


def to_event(tracking_no: str, route: Route) -> TrackingEvent:
    """Normalize one route node; an unknown opCode keeps ``status=None`` rather than a guess."""
    code = route.op_code.strip()
    return TrackingEvent(
        carrier=CARRIER,
        tracking_no=tracking_no,
        time=parse_accept_time(route.accept_time),
        status=STATUS_BY_CODE.get(code),
        raw_code=code,
        raw_text=route.remark,
        location=route.accept_address,
        reason=REASON_BY_CODE.get(code),
    )


def to_results(numbers: list[str], resps: list[RouteResp]) -> list[TrackingResult]:
    """Return one result per number asked, events oldest first.

    A number missing from ``routeResps`` is ``not_found``; one SF answers with no route node at all
    is ``no_routes`` (SF cannot tell an unknown number from one not scanned yet).
    """
    by_number = {resp.mail_no: resp for resp in resps}
    results = []
    for number in numbers:
        resp = by_number.get(number)
        if resp is None:
            results.append(TrackingResult(CARRIER, number, problem="not_found", problem_code="not_in_response"))
            continue
        events = sorted((to_event(number, route) for route in resp.routes), key=lambda e: e.time)
        if not events:
            results.append(TrackingResult(CARRIER, number, problem="no_routes", problem_code="empty_routes"))
            continue
        results.append(TrackingResult(CARRIER, number, tuple(events)))
    return results
