"""Small typed models of 丰桥 payloads, read strictly: a field of the wrong type raises ``ValueError``.

Every answer is an envelope (SF API overview, 公共响应参数): ``apiResultCode`` (``A1000`` = the platform
accepted the call), ``apiErrorMsg``, ``apiResponseID`` and ``apiResultData`` — a JSON *string* holding
the business result ``{"success", "errorCode", "errorMsg", "msgData"}``. The route query's
``msgData`` is ``{"routeResps": [{"mailNo", "routes": [{"acceptTime", "acceptAddress", "remark",
"opCode"}]}]}`` (路由查询接口 EXP_RECE_SEARCH_ROUTES, 响应参数). The ``msgData`` we send is built
here too, after SF's request samples (05.route_query_by_MailNo.json, 18.wanted_intercept.json).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from carriers.model import ParcelRef
from carriers.sf.settings import SFSettings

OK = "A1000"
#: 截单转寄 serviceCode for 退回 (return to the sender); 1 would be 转寄 (forward to a new address).
RETURN_TO_SENDER = "2"


def _str(obj: dict[str, Any], key: str, where: str, *, optional: bool = False) -> str:
    """Read a string field (``None`` allowed and read as '' when ``optional``)."""
    value = obj.get(key)
    if value is None and optional:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{where}.{key}: expected a string, got {value!r}")
    return value


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(value).__name__}")
    return value


def _json(text: str, where: str) -> Any:
    """Decode JSON; nesting too deep for the decoder is a ``ValueError`` like any other unreadable text."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError(f"{where}: JSON nested too deeply") from None


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"{where}: expected a JSON array, got {type(value).__name__}")
    return value


@dataclass(frozen=True, slots=True)
class Envelope:
    """The platform's answer around every call."""

    result_code: str
    error_msg: str
    response_id: str
    result_data: str | dict[str, Any] | None

    @classmethod
    def parse(cls, text: str) -> Envelope:
        """Read the response body; raises ``ValueError`` if it is not SF's envelope."""
        body = _object(_json(text, "response"), "response")
        data = body.get("apiResultData")
        if data is not None and not isinstance(data, str | dict):
            raise ValueError(f"response.apiResultData: expected a JSON string, got {type(data).__name__}")
        return cls(
            result_code=_str(body, "apiResultCode", "response"),
            error_msg=_str(body, "apiErrorMsg", "response", optional=True),
            response_id=_str(body, "apiResponseID", "response", optional=True),
            result_data=data,
        )


@dataclass(frozen=True, slots=True)
class BizResult:
    """The business answer inside ``apiResultData``."""

    success: bool
    error_code: str
    error_msg: str
    msg_data: Any

    @classmethod
    def parse(cls, data: str | dict[str, Any] | None) -> BizResult:
        """Read ``apiResultData`` (a JSON string, or an object already decoded)."""
        if data is None:
            raise ValueError("response.apiResultData: missing although apiResultCode is A1000")
        body = _object(_json(data, "apiResultData") if isinstance(data, str) else data, "apiResultData")
        success = body.get("success")
        if not isinstance(success, bool):
            raise ValueError(f"apiResultData.success: expected true or false, got {success!r}")
        return cls(
            success=success,
            error_code=_str(body, "errorCode", "apiResultData", optional=True),
            error_msg=_str(body, "errorMsg", "apiResultData", optional=True),
            msg_data=body.get("msgData"),
        )


@dataclass(frozen=True, slots=True)
class Route:
    """One route node (路由节点) exactly as SF wrote it."""

    accept_time: str
    accept_address: str
    remark: str
    op_code: str


@dataclass(frozen=True, slots=True)
class RouteResp:
    """All route nodes SF has for one waybill number."""

    mail_no: str
    routes: tuple[Route, ...]


def parse_route_resps(msg_data: Any) -> list[RouteResp]:
    """Read the route query's ``msgData``."""
    resps = _list(_object(msg_data, "msgData").get("routeResps"), "msgData.routeResps")
    parsed = []
    for i, item in enumerate(resps):
        where = f"routeResps[{i}]"
        resp = _object(item, where)
        routes = []
        for j, node in enumerate(_list(resp.get("routes") or [], f"{where}.routes")):
            at = f"{where}.routes[{j}]"
            node = _object(node, at)
            routes.append(
                Route(
                    accept_time=_str(node, "acceptTime", at),
                    accept_address=_str(node, "acceptAddress", at, optional=True),
                    remark=_str(node, "remark", at, optional=True),
                    op_code=_str(node, "opCode", at),
                )
            )
        parsed.append(RouteResp(mail_no=_str(resp, "mailNo", where), routes=tuple(routes)))
    return parsed


def route_query(numbers: Sequence[str], check_phone_no: str | None = None) -> dict[str, Any]:
    """Return the route query's msgData: by waybill number (trackingType 1), standard routes (methodType 1).

    ``check_phone_no`` (four digits of the sender's phone) lets SF answer waybills that are not on the
    account's monthly card; for several numbers SF takes one four-digit group per number, comma-separated.
    """
    msg: dict[str, Any] = {"language": "0", "trackingType": "1", "trackingNumber": list(numbers), "methodType": "1"}
    if check_phone_no:
        msg["checkPhoneNo"] = ",".join([check_phone_no] * len(numbers))
    return msg


def intercept_order(settings: SFSettings, parcel: ParcelRef) -> dict[str, Any]:
    """Return the 截单转寄 msgData asking SF to send ``parcel`` back to the sender (role 1 = 寄方)."""
    msg: dict[str, Any] = {
        "waybillNo": parcel.tracking_no,
        "serviceCode": RETURN_TO_SENDER,
        "role": "1",
        "payMode": settings.intercept_pay_mode,
    }
    if settings.monthly_card_no:
        msg["monthlyCardNo"] = settings.monthly_card_no
    if settings.return_address is not None:
        msg["newDestAddress"] = settings.return_address.as_payload()
    return msg
