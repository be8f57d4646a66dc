"""Small typed models of ZOP payloads, read strictly: a field of the wrong type raises ``ValueError``.

Every ZOP answer is one JSON object ``{"status": bool, "statusCode": str, "message": str, "result": …}``
(ZOP's common response; the platform's errors come the same way with HTTP 200, 公共错误码对照表).
The trace query ``zto.merchant.waybill.track.query`` takes ``{"billCode"}`` and answers ``result`` as
a list of scans ``{"billCode", "scanType", "scanDate", "desc", "scanSite": {"name", "code", "prov",
"city", …}, "preOrNextSite", "signMan", "operateUser", …}``. The intercept ``thirdcenter.createIntercept``
takes ``billCode``, ``requestId`` (请求唯一标识, 幂等校验), ``destinationType`` (1 返回收件网点, 2 返回寄件人地址,
3 修改派送地址, 4 退回指定地址) and optionally ``thirdBizNo`` and ``customerId``.

Uncertain: ZOP's own pages are a single-page app that no public copy preserves, so these shapes come
from public clients and the platform's SDK: ``scanDate`` is epoch milliseconds in some (read as such)
and "yyyy-MM-dd HH:mm:ss" in the older trace API (also read); the intercept's answer is documented
as ``{"centerBizNo"}`` under ``result`` in the common envelope but under ``data`` by one client, so
both are read for the carrier's reference.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from carriers.model import ParcelRef

#: thirdcenter.createIntercept ``destinationType``: send the parcel back to the sender's address.
RETURN_TO_SENDER = 2


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(value).__name__}")
    return value


def _text(obj: dict[str, Any], key: str, where: str, *, required: bool = False) -> str:
    """Read a string field; an absent or null optional field reads as ''."""
    value = obj.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise ValueError(f"{where}.{key}: expected a non-empty string, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Answer:
    """The common answer around every ZOP call."""

    status: bool
    status_code: str
    message: str
    result: Any

    @classmethod
    def parse(cls, text: str) -> Answer:
        """Read the response body; raises ``ValueError`` if it is not ZOP's answer object."""
        try:
            decoded = json.loads(text)
        except RecursionError:
            raise ValueError("response: JSON nested too deeply") from None
        body = _object(decoded, "response")
        status = body.get("status")
        if not isinstance(status, bool):
            raise ValueError(f"response.status: expected true or false, got {status!r}")
        return cls(
            status=status,
            status_code=_text(body, "statusCode", "response"),
            message=_text(body, "message", "response"),
            result=body.get("result", body.get("data")),
        )


@dataclass(frozen=True, slots=True)
class Scan:
    """One trace node (轨迹) exactly as ZTO wrote it; ``scan_date`` is kept as text for the mapping."""

    bill_code: str
    scan_type: str
    scan_date: str
    desc: str
    site_name: str
    site_city: str


def _scan_date(node: dict[str, Any], where: str) -> str:
    """Read ``scanDate``: epoch milliseconds as a number or digits, or a local date-time string."""
    value = node.get("scanDate")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise ValueError(f"{where}.scanDate: expected epoch milliseconds or a date-time, got {value!r}")


def parse_scans(result: Any) -> list[Scan]:
    """Read the trace query's ``result``: a list of scans (``null`` is read as no scan yet)."""
    if result is None:
        return []
    if not isinstance(result, list):
        raise ValueError(f"result: expected a JSON array, got {type(result).__name__}")
    scans = []
    for i, item in enumerate(result):
        where = f"result[{i}]"
        node = _object(item, where)
        site = node.get("scanSite")
        site = _object(site, f"{where}.scanSite") if site is not None else {}
        scans.append(
            Scan(
                bill_code=_text(node, "billCode", where),
                scan_type=_text(node, "scanType", where, required=True).strip(),
                scan_date=_scan_date(node, where),
                desc=_text(node, "desc", where),
                site_name=_text(site, "name", f"{where}.scanSite"),
                site_city=_text(site, "city", f"{where}.scanSite"),
            )
        )
    return scans


def intercept_ref(result: Any) -> str:
    """Return the ``centerBizNo`` ZTO gives an accepted intercept, or '' when it sent none."""
    if isinstance(result, dict):
        ref = result.get("centerBizNo")
        if isinstance(ref, str):
            return ref
    return ""


def track_query(number: str) -> dict[str, Any]:
    """Return the trace query's body for one waybill number."""
    return {"billCode": number}


def intercept_order(parcel: ParcelRef, request_id: str, customer_id: str = "") -> dict[str, Any]:
    """Return the createIntercept body asking ZTO to send ``parcel`` back to the sender."""
    body: dict[str, Any] = {
        "billCode": parcel.tracking_no,
        "requestId": request_id,
        "destinationType": RETURN_TO_SENDER,
    }
    if parcel.order_id:
        body["thirdBizNo"] = parcel.order_id
    if customer_id:
        body["customerId"] = customer_id
    return body
