"""The carrier SDK: the normalized tracking model, the adapter protocol, typed errors, plugins.

A third-party adapter depends on this package alone; it never imports ``monitor``.
"""

from carriers.adapter import INTERCEPT, PUSH, TRACK, AdapterInfo, CarrierAdapter, SupportsIntercept, SupportsPush
from carriers.errors import (
    CarrierAuthError,
    CarrierError,
    CarrierRateLimited,
    CarrierResponseError,
    CarrierUnavailable,
    PluginError,
)
from carriers.model import (
    ExceptionReason,
    InterceptResult,
    Limits,
    ParcelRef,
    Status,
    TrackingEvent,
    TrackingResult,
)

__all__ = [
    "INTERCEPT",
    "PUSH",
    "TRACK",
    "AdapterInfo",
    "CarrierAdapter",
    "CarrierAuthError",
    "CarrierError",
    "CarrierRateLimited",
    "CarrierResponseError",
    "CarrierUnavailable",
    "ExceptionReason",
    "InterceptResult",
    "Limits",
    "ParcelRef",
    "PluginError",
    "Status",
    "SupportsIntercept",
    "SupportsPush",
    "TrackingEvent",
    "TrackingResult",
]
