"""Prometheus metrics: counters the service increments, and store counts read at scrape time.

Every :class:`Metrics` owns its own ``CollectorRegistry`` — never the process-global one — so
tests can build as many as they like and one process could serve two monitors. Names follow
what a person asks: "how many polls failed?" is ``parcel_monitor_polls_total{outcome="error"}``.

Counters and histograms (incremented by the code that does the work)::

    parcel_monitor_polls_total{carrier,outcome}            poll rounds (ok | error | ...)
    parcel_monitor_carrier_requests_total{carrier,outcome} calls to a carrier API
    parcel_monitor_events_ingested_total{carrier}          tracking events fed to the store
    parcel_monitor_refunds_total{decision}                 refund decisions, one per parcel
    parcel_monitor_intercept_latency_seconds               refund received → carrier answered
    parcel_monitor_http_requests_total{method,route,status}
    parcel_monitor_http_request_duration_seconds{method,route}

Gauges read from the store at each scrape (one cheap GROUP BY each, see
:mod:`monitor.store.views`)::

    parcel_monitor_parcels{status}
    parcel_monitor_anomalies_active{rule,state}
    parcel_monitor_actions_pending{kind}
    parcel_monitor_notifications_pending{receiver}
    parcel_monitor_store_up                                 1 if the counts could be read
"""

from __future__ import annotations

from collections.abc import Iterator

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from monitor.store.store import Store
from monitor.store.views import read

log = structlog.get_logger("monitor.metrics")

PREFIX = "parcel_monitor"
#: Seconds from a refund request to the carrier's answer: we aim at seconds, commercial tools at ~10 min.
INTERCEPT_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    """The service's metrics in a registry of their own; pass ``store`` to expose its counts too."""

    def __init__(self, store: Store | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.polls = Counter(
            f"{PREFIX}_polls", "Poll rounds per carrier and outcome.", ["carrier", "outcome"], registry=r
        )
        self.carrier_requests = Counter(
            f"{PREFIX}_carrier_requests", "Calls to carrier APIs per outcome.", ["carrier", "outcome"], registry=r
        )
        self.events_ingested = Counter(
            f"{PREFIX}_events_ingested", "Tracking events fed to the store, per carrier.", ["carrier"], registry=r
        )
        self.refunds = Counter(
            f"{PREFIX}_refunds",
            "Refund decisions, one per parcel (`none` for an order without parcels).",
            ["decision"],
            registry=r,
        )
        self.intercept_latency = Histogram(
            f"{PREFIX}_intercept_latency_seconds",
            "Seconds from a refund request received to the carrier's answer to the intercept.",
            buckets=INTERCEPT_BUCKETS,
            registry=r,
        )
        self.http_requests = Counter(
            f"{PREFIX}_http_requests",
            "HTTP requests per route template and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            f"{PREFIX}_http_request_duration_seconds",
            "Seconds spent answering an HTTP request, per route template.",
            ["method", "route"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        if store is not None:
            r.register(StoreCollector(store))

    def render(self) -> tuple[bytes, str]:
        """Return the exposition text and its content type, for ``GET /metrics``."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class StoreCollector(Collector):
    """Read the store's counts at scrape time, so the numbers are never stale nor double-kept."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def describe(self) -> list[Metric]:
        """Declare no fixed families: the registry must not run a query just to register us."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Yield the store's counts; a database that does not answer gives ``store_up 0``, not a failed scrape."""
        parcels = GaugeMetricFamily(f"{PREFIX}_parcels", "Parcels per status.", labels=["status"])
        anomalies = GaugeMetricFamily(
            f"{PREFIX}_anomalies_active", "Open or acknowledged anomalies per rule and state.", labels=["rule", "state"]
        )
        actions = GaugeMetricFamily(
            f"{PREFIX}_actions_pending", "Outbox actions not done yet, per kind.", labels=["kind"]
        )
        notifications = GaugeMetricFamily(
            f"{PREFIX}_notifications_pending", "Notifications waiting to be sent, per receiver.", labels=["receiver"]
        )
        up = GaugeMetricFamily(f"{PREFIX}_store_up", "1 if the store's counts could be read at this scrape.")
        try:
            with read(self.store) as views:
                by_status = views.parcels_by_status()
                by_rule = views.active_anomalies_by_rule()
                by_kind = views.pending_actions_by_kind()
                by_receiver = views.pending_notifications_by_receiver()
        except SQLAlchemyError as err:
            log.warning("metrics.store_unavailable", error=type(err).__name__)
            up.add_metric([], 0)
            yield up
            return
        for status, n in sorted(by_status.items()):
            parcels.add_metric([status], n)
        for (rule, state), n in sorted(by_rule.items()):
            anomalies.add_metric([rule, state], n)
        for kind, n in sorted(by_kind.items()):
            actions.add_metric([kind], n)
        for receiver, n in sorted(by_receiver.items()):
            notifications.add_metric([receiver], n)
        up.add_metric([], 1)
        yield from (parcels, anomalies, actions, notifications, up)
