"""Map Kuaidi100's tracking payloads onto the normalized model (pure: no I/O, no clock)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from carriers.errors import CarrierResponseError
from carriers.kuaidi100.schema import CARRIER, RawEvent, RawPush, RawTrack
from carriers.model import ExceptionReason, Status, TrackingEvent, TrackingResult

SHANGHAI = ZoneInfo("Asia/Shanghai")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# The state table of 实时快递查询, "运单快递状态(state)说明": basic states 0–14 and the advanced
# sub-states returned with resultv2=4 (apifox.com/apidoc/project-514987/api-8562559, a copy of
# api.kuaidi100.com/document/5f0ffb5ebc8da837cbd8aefc). Customs 8/10–13 come from the state lists
# of the same page and of the push document (api-8568518). Each line: code, the document's name.
STATUS_BY_CODE: dict[str, Status] = {
    "1": Status.PICKED_UP,  # 揽收
    "101": Status.PENDING,  # 已下单
    "102": Status.PENDING,  # 待揽收
    "103": Status.PICKED_UP,  # 已揽收
    "0": Status.IN_TRANSIT,  # 在途
    "1001": Status.IN_TRANSIT,  # 到达派件城市
    "1002": Status.IN_TRANSIT,  # 干线
    "1003": Status.IN_TRANSIT,  # 转递: sent on to a new delivery address
    "5": Status.OUT_FOR_DELIVERY,  # 派件
    "501": Status.AVAILABLE_FOR_PICKUP,  # 投柜或驿站
    "3": Status.DELIVERED,  # 签收
    "301": Status.DELIVERED,  # 本人签收
    "302": Status.DELIVERED,  # 派件异常后签收
    "303": Status.DELIVERED,  # 代签
    "304": Status.DELIVERED,  # 投柜或站签收
    "6": Status.RETURNING,  # 退回
    "4": Status.RETURNED,  # 退签
    "401": Status.RETURNED,  # 已销单 (listed under 4 退签)
    "14": Status.EXCEPTION,  # 拒签 (listed under 4 退签; DESIGN.md: an exception, refused)
    "7": Status.IN_TRANSIT,  # 转投: handed to another carrier, still moving
    "2": Status.EXCEPTION,  # 疑难
    "201": Status.EXCEPTION,  # 超时未签收
    "202": Status.EXCEPTION,  # 超时未更新
    "203": Status.EXCEPTION,  # 拒收 (the recipient refused, waiting for the sender)
    "204": Status.DELIVERY_FAILED,  # 派件异常
    "205": Status.EXCEPTION,  # 柜或驿站超时未取
    "206": Status.DELIVERY_FAILED,  # 无法联系 (the recipient could not be reached)
    "207": Status.EXCEPTION,  # 超区
    "208": Status.EXCEPTION,  # 滞留
    "209": Status.EXCEPTION,  # 破损
    "210": Status.EXCEPTION,  # 销单 (the sender cancelled)
    "8": Status.IN_TRANSIT,  # 清关: customs is a normal step, not a problem
    "10": Status.IN_TRANSIT,  # 待清关
    "11": Status.IN_TRANSIT,  # 清关中
    "12": Status.IN_TRANSIT,  # 已清关
    "13": Status.EXCEPTION,  # 清关异常
}

#: Why an exception code is a problem parcel.
REASON_BY_CODE: dict[str, ExceptionReason] = {
    "14": ExceptionReason.REFUSED,
    "2": ExceptionReason.OTHER,
    "201": ExceptionReason.OTHER,
    "202": ExceptionReason.OTHER,
    "203": ExceptionReason.REFUSED,
    "205": ExceptionReason.OTHER,
    "207": ExceptionReason.ADDRESS,
    "208": ExceptionReason.OTHER,
    "209": ExceptionReason.DAMAGED,
    "210": ExceptionReason.OTHER,
    "13": ExceptionReason.CUSTOMS,
}

#: The basic status names an event carries with resultv2=1 (no ``statusCode``), same document.
CODE_BY_NAME: dict[str, str] = {
    "在途": "0",
    "揽收": "1",
    "疑难": "2",
    "签收": "3",
    "退签": "4",
    "派件": "5",
    "退回": "6",
    "转投": "7",
    "清关": "8",
    "拒签": "14",
}


def split_ref(ref: str, default_company: str) -> tuple[str, str]:
    """Split ``<company>:<number>`` (or a plain number of the default company) into (com, num)."""
    company, sep, number = ref.partition(":")
    return (company, number) if sep else (default_company, ref)


def join_ref(company: str, number: str, default_company: str) -> str:
    """Write (com, num) the way :func:`split_ref` reads it back."""
    return number if company == default_company else f"{company}:{number}"


def parse_time(text: str, raw: object) -> datetime:
    """Read Kuaidi100's "yyyy-MM-dd HH:mm:ss" as a moment in China Standard Time."""
    try:
        moment = datetime.strptime(text, TIME_FORMAT).replace(tzinfo=SHANGHAI)
        moment.astimezone(UTC)  # year 1 in Shanghai has no UTC time: refuse it here, not when it is stored
    except (ValueError, OverflowError) as err:
        raise CarrierResponseError(f"kuaidi100: bad event time {text[:40]!r}", carrier=CARRIER, raw=raw) from err
    return moment


def to_event(tracking_no: str, event: RawEvent, code: str, raw: object) -> TrackingEvent:
    """Normalize one scan; an unknown code keeps ``status=None`` rather than a guess."""
    status = STATUS_BY_CODE.get(code)
    return TrackingEvent(
        carrier=CARRIER,
        tracking_no=tracking_no,
        time=parse_time(event.ftime or event.time, raw),
        status=status,
        raw_code=code,
        raw_text=event.context,
        location=event.location or event.area_name,
        reason=REASON_BY_CODE.get(code) if status is Status.EXCEPTION else None,
    )


def to_events(tracking_no: str, track: RawTrack, raw: object) -> tuple[TrackingEvent, ...]:
    """Normalize a history (newest first on the wire) into events, oldest first.

    An event's code is its ``statusCode``, else the code of its status name; the newest event
    without either takes the parcel's current ``state``.
    """
    events = []
    for index, event in enumerate(track.data):
        code = event.status_code or CODE_BY_NAME.get(event.status, "")
        if not code and index == 0:
            code = track.state
        events.append(to_event(tracking_no, event, code, raw))
    return tuple(sorted(reversed(events), key=lambda e: e.time))


def query_events(tracking_no: str, payload: object) -> tuple[TrackingEvent, ...]:
    """Turn a successful 实时快递查询 answer into events."""
    return to_events(tracking_no, RawTrack.read(payload, payload), payload)


def push_results(payload: object, default_company: str) -> list[TrackingResult]:
    """Turn a push ``param`` into the result of the number it is about.

    Monitoring that Kuaidi100 gave up (``status=abort``: 3天查询无记录, 60天无变化) is a problem.
    """
    push = RawPush.read(payload)
    track = push.last_result
    company = push.com_old if push.auto_check == "1" and push.com_old else track.com
    if not track.nu or not company:
        raise CarrierResponseError("kuaidi100: push without nu or com", carrier=CARRIER, raw=payload)
    ref = join_ref(company, track.nu, default_company)
    problem = "monitoring_stopped" if push.status == "abort" else None
    events = to_events(ref, track, payload)
    return [TrackingResult(CARRIER, ref, events, problem=problem, problem_code="abort" if problem else "")]
