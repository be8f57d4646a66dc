"""Typed models of Kuaidi100's raw payloads, read strictly (pure: no I/O).

Field names follow the carrier's documents: 实时快递查询 (``POST /poll/query.do``,
api.kuaidi100.com/document/5f0ffb5ebc8da837cbd8aefc), the subscription reply and the push
callback (``param`` of 推送接口, apifox.com/apidoc/project-514987/api-8568518). Kuaidi100 sends
codes as strings or integers, so both are read as text. A missing or mistyped field raises
:class:`~carriers.errors.CarrierResponseError` with the whole payload kept; nothing is guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from carriers.errors import CarrierResponseError

CARRIER = "kuaidi100"


def _fail(message: str, raw: object) -> CarrierResponseError:
    return CarrierResponseError(f"kuaidi100: {message}", carrier=CARRIER, raw=raw)


def _object(value: object, what: str, raw: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(f"{what} is not a JSON object", raw)
    return value


def _text(obj: Mapping[str, Any], key: str, raw: object, required: bool = False) -> str:
    """Read a string (or integer code) field; absent or null optional fields read as ''."""
    value = obj.get(key)
    if value is None:
        if required:
            raise _fail(f"field {key!r} is missing", raw)
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _fail(f"field {key!r} is not text: {value!r}", raw)
    return str(value)


@dataclass(frozen=True, slots=True)
class RawEvent:
    """One element of ``data``: a scan as Kuaidi100 reports it."""

    context: str  # the scan text (轨迹描述)
    time: str  # the carrier's time, "yyyy-MM-dd HH:mm:ss", China Standard Time
    ftime: str  # the same, formatted by Kuaidi100
    location: str = ""
    area_name: str = ""  # 行政区域名称 (resultv2 >= 1)
    status: str = ""  # status name, e.g. 在途 / 投柜或驿站 (resultv2 >= 1)
    status_code: str = ""  # advanced status code, e.g. 501 (resultv2 = 4)

    @classmethod
    def read(cls, value: object, raw: object) -> RawEvent:
        """Read one event; ``context`` and at least one of ``ftime``/``time`` are required."""
        obj = _object(value, "an element of data", raw)
        event = cls(
            context=_text(obj, "context", raw, required=True),
            time=_text(obj, "time", raw),
            ftime=_text(obj, "ftime", raw),
            location=_text(obj, "location", raw),
            area_name=_text(obj, "areaName", raw),
            status=_text(obj, "status", raw),
            status_code=_text(obj, "statusCode", raw),
        )
        if not (event.ftime or event.time):
            raise _fail("an element of data has neither ftime nor time", raw)
        return event


@dataclass(frozen=True, slots=True)
class RawTrack:
    """A successful query answer, or the ``lastResult`` of a push: the whole history, newest first."""

    nu: str
    com: str
    state: str  # the parcel's current state (0 在途, 1 揽收, ... 14 拒签)
    data: tuple[RawEvent, ...]

    @classmethod
    def read(cls, value: object, raw: object) -> RawTrack:
        """Read a tracking history; ``data`` must be a list (possibly empty)."""
        obj = _object(value, "the tracking result", raw)
        data = obj.get("data")
        if not isinstance(data, list):
            raise _fail("field 'data' is not a list", raw)
        return cls(
            nu=_text(obj, "nu", raw),
            com=_text(obj, "com", raw),
            state=_text(obj, "state", raw),
            data=tuple(RawEvent.read(item, raw) for item in data),
        )


@dataclass(frozen=True, slots=True)
class Answer:
    """A bare answer: ``{"result": false, "returnCode": "500", "message": "查询无结果，请隔段时间再查"}``."""

    result: bool
    return_code: str
    message: str

    @classmethod
    def read(cls, value: object, raw: object) -> Answer:
        """Read an error answer of the query, or the reply to a subscription."""
        obj = _object(value, "the answer", raw)
        result = obj.get("result", False)
        if not isinstance(result, bool):
            raise _fail(f"field 'result' is not a boolean: {result!r}", raw)
        return cls(result, _text(obj, "returnCode", raw, required=True), _text(obj, "message", raw))


@dataclass(frozen=True, slots=True)
class RawPush:
    """The ``param`` of a push callback: the monitoring status and the latest full result."""

    status: str  # polling, shutdown (signed for), abort (e.g. 3天查询无记录), updateall
    message: str
    auto_check: str  # "1" when Kuaidi100 corrected the company code (then comOld is ours)
    com_old: str
    last_result: RawTrack

    @classmethod
    def read(cls, value: object) -> RawPush:
        """Read a push ``param`` object."""
        obj = _object(value, "the push param", value)
        return cls(
            status=_text(obj, "status", value, required=True),
            message=_text(obj, "message", value),
            auto_check=_text(obj, "autoCheck", value),
            com_old=_text(obj, "comOld", value),
            last_result=RawTrack.read(obj.get("lastResult"), value),
        )
