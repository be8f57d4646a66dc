"""Kuaidi100 (快递100), registered like any plugin: real-time queries and subscription pushes.

Kuaidi100 is an aggregator: one enterprise account tracks the numbers of most Chinese couriers,
named by a company code (``zhongtong``, ``yuantong``, ``shunfeng``...). A plain tracking number
belongs to the configured ``company``; a number written ``<company>:<number>`` names its own::

    [carriers.kuaidi100]
    company = "zhongtong"                   # the company of plain numbers
    customer_env = "KUAIDI100_CUSTOMER"     # 授权码 customer
    key_env = "KUAIDI100_KEY"               # 授权key
    # for subscriptions (订阅推送) only; with neither salt_env nor push_token_env pushes are refused:
    callback_url = "https://monitor.example.com/api/v1/carriers/kuaidi100/push"   # where Kuaidi100 posts
    salt_env = "KUAIDI100_SALT"             # pushes are signed MD5(param + salt)
    push_token_env = "KUAIDI100_PUSH_TOKEN" # and/or a secret ?token= in the callback URL
    # optional: base_url, timeout_seconds (default 10), retries (default 3), requests_per_second (default 10)

Limits: one number per query; a number queried more than 48 times in 24 hours is locked by
Kuaidi100 for 24 hours (锁单), so ``max_queries_per_number_per_day`` is 48 and the scheduler
should not ask about one number more than every 30 minutes.

A push handler answers Kuaidi100 with :func:`push_ack` after the results are stored.
"""

from __future__ import annotations

from typing import Any

from carriers.adapter import PUSH, TRACK, AdapterInfo
from carriers.kuaidi100.client import CODE, Kuaidi100Carrier, build_query, build_subscribe, push_ack
from carriers.kuaidi100.mapping import STATUS_BY_CODE
from carriers.kuaidi100.settings import Kuaidi100Settings
from carriers.retry import backoff_context


def _build(settings: dict[str, Any], context: dict[str, Any]) -> Kuaidi100Carrier:
    """Build the adapter from its config table and the service's ``http`` client and ``environ``."""
    parsed = Kuaidi100Settings.from_mapping(settings, context.get("environ", {}))
    return Kuaidi100Carrier(parsed, context["http"], **backoff_context(context))


INFO = AdapterInfo(
    code=CODE,
    label="快递100 Kuaidi100",
    factory=_build,
    capabilities=frozenset({TRACK, PUSH}),
    settings_type=Kuaidi100Settings,
)

__all__ = [
    "CODE",
    "INFO",
    "STATUS_BY_CODE",
    "Kuaidi100Carrier",
    "Kuaidi100Settings",
    "build_query",
    "build_subscribe",
    "push_ack",
]
