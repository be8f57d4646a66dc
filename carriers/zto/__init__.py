"""ZTO Express (中通快递) through the ZOP open platform, registered like any plugin.

::

    [carriers.zto]
    app_key_env = "ZTO_APP_KEY"          # 应用 appKey (控制台 - 应用管理)
    app_secret_env = "ZTO_APP_SECRET"    # 应用 appSecret: signs every request body
    environment = "production"           # or "sandbox" (japi-test.zto.com), the default
    # optional: base_url, customer_id (集团客户编码, sent with intercepts),
    #           timeout_seconds (default 10), retries (default 3)

Tracking uses ``zto.merchant.waybill.track.query`` (one waybill per call); intercepts use
``thirdcenter.createIntercept`` with destinationType 2 (return to the sender's address).
"""

from __future__ import annotations

from typing import Any

from carriers.adapter import INTERCEPT, TRACK, AdapterInfo
from carriers.retry import backoff_context
from carriers.zto.client import CODE, ZTOCarrier, build_request, data_digest
from carriers.zto.mapping import STATUS_BY_CODE
from carriers.zto.settings import ZTOSettings


def _build(settings: dict[str, Any], context: dict[str, Any]) -> ZTOCarrier:
    """Build the adapter from the ``[carriers.zto]`` table and the service's HTTP client and environment.

    ``context`` may also hand in ``sleep`` and ``rand`` for the retry backoff (tests make them instant).
    """
    parsed = ZTOSettings.from_mapping(settings, context.get("environ", {}))
    return ZTOCarrier(parsed, context["http"], **backoff_context(context))


INFO = AdapterInfo(
    code=CODE,
    label="中通快递 ZTO Express",
    factory=_build,
    capabilities=frozenset({TRACK, INTERCEPT}),
    settings_type=ZTOSettings,
)

__all__ = ["CODE", "INFO", "STATUS_BY_CODE", "ZTOCarrier", "ZTOSettings", "build_request", "data_digest"]
