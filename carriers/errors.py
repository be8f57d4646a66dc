"""Typed errors an adapter raises for a failed call.

::

    CarrierError                    any failure of a call to a carrier
    ├── CarrierAuthError            credentials rejected: stop polling, alert an operator
    ├── CarrierRateLimited          slow down; ``retry_after`` seconds when the carrier says
    ├── CarrierUnavailable          timeout, connection refused, 5xx: retry with backoff
    └── CarrierResponseError        the answer could not be understood; ``raw`` keeps it
    PluginError                     an adapter plugin could not be loaded

A tracking number the carrier does not know is *not* an error: it is a ``problem`` on
its :class:`~carriers.model.TrackingResult`, so one bad number never fails a batch.
"""

from __future__ import annotations


class CarrierError(Exception):
    """A call to a carrier failed."""

    def __init__(self, message: str, *, carrier: str = "", code: str = "") -> None:
        super().__init__(message)
        self.carrier = carrier
        self.code = code


class CarrierAuthError(CarrierError):
    """The carrier rejected our credentials or signature."""


class CarrierRateLimited(CarrierError):
    """The carrier asked us to slow down."""

    def __init__(self, message: str, *, carrier: str = "", code: str = "", retry_after: float | None = None) -> None:
        super().__init__(message, carrier=carrier, code=code)
        self.retry_after = retry_after


class CarrierUnavailable(CarrierError):
    """The carrier could not be reached or failed on its side; worth retrying later."""


class CarrierResponseError(CarrierError):
    """The carrier answered something we could not map; the raw payload is kept."""

    def __init__(self, message: str, *, carrier: str = "", code: str = "", raw: object = None) -> None:
        super().__init__(message, carrier=carrier, code=code)
        self.raw = raw


class PluginError(Exception):
    """An adapter plugin could not be loaded or is malformed."""
