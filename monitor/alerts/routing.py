"""The route tree, after Alertmanager: which receivers an alert goes to, and how it is grouped.

The root route matches every alert. Below a matching route, children are tried in order;
the first child that matches takes the alert and stops the search unless it says
``continue = true``. A route none of whose children match delivers the alert itself.
Children inherit ``receiver``, ``group_by`` and the timings they do not set.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

LABELS = ("rule", "severity", "carrier", "shop")
DURATION = re.compile(r"^(\d+)(s|m|h|d)$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
ROUTE_KEYS = {
    "receiver", "match", "group_by", "group_wait", "group_interval", "repeat_interval", "send_resolved", "continue",
    "routes",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Route:
    """One node of the tree."""

    receiver: str
    match: tuple[tuple[str, frozenset[str]], ...] = ()
    group_by: tuple[str, ...] = ("rule",)
    group_wait: timedelta = timedelta(seconds=30)
    group_interval: timedelta = timedelta(minutes=5)
    repeat_interval: timedelta | None = timedelta(hours=4)
    send_resolved: bool = True
    continue_: bool = False
    routes: tuple[Route, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Tell whether every matcher of this route accepts the alert's labels."""
        return all(labels.get(name, "") in allowed for name, allowed in self.match)

    def group_key(self, labels: Mapping[str, str]) -> str:
        """Return the key of the group an alert joins under this route."""
        return ",".join(f"{name}={labels.get(name, '')}" for name in self.group_by)


def resolve(root: Route, labels: Mapping[str, str]) -> list[Route]:
    """Return the routes (each with its receiver) that deliver an alert with ``labels``."""
    return _walk(root, labels)


def _walk(route: Route, labels: Mapping[str, str]) -> list[Route]:
    found: list[Route] = []
    for child in route.routes:
        if not child.matches(labels):
            continue
        found.extend(_walk(child, labels))
        if not child.continue_:
            break
    return found or [route]


def default_route(receivers: list[str]) -> Route:
    """Return the route used without ``[alerts.route]``: every channel, at once, no repeats.

    One message per rule per sweep (a burst is still one digest), no resolved notices.
    """
    zero = timedelta(0)
    timing = {"group_wait": zero, "group_interval": zero, "repeat_interval": None, "send_resolved": False}
    fanout = tuple(Route(receiver=r, continue_=True, **timing) for r in receivers)  # type: ignore[arg-type]
    return Route(receiver=receivers[0] if receivers else "", routes=fanout, **timing)  # type: ignore[arg-type]


def parse_duration(value: Any, where: str) -> timedelta:
    """Read ``30s``, ``5m``, ``4h`` or ``1d``."""
    m = DURATION.match(value) if isinstance(value, str) else None
    if m is None:
        raise ValueError(f"{where}: expected a duration such as 30s, 5m, 4h or 1d, got {value!r}")
    return timedelta(**{UNITS[m.group(2)]: int(m.group(1))})


def parse_route(
    raw: Mapping[str, Any], receivers: set[str], where: str = "alerts.route", parent: Route | None = None
) -> Route:
    """Build a route tree from config, checking every key and that receivers exist."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: expected a table, got {raw!r}")
    unknown = sorted(set(raw) - ROUTE_KEYS)
    if unknown:
        raise ValueError(f"{where}.{unknown[0]}: unknown route setting (known: {', '.join(sorted(ROUTE_KEYS))})")
    base = parent or Route(receiver="")
    changes: dict[str, Any] = {"routes": (), "match": (), "continue_": False}
    if "receiver" in raw:
        if raw["receiver"] not in receivers:
            known = ", ".join(sorted(receivers)) or "none"
            raise ValueError(f"{where}.receiver: no alert channel named {raw['receiver']!r} (channels: {known})")
        changes["receiver"] = raw["receiver"]
    elif parent is None:
        raise ValueError(f"{where}.receiver: the root route needs a receiver")
    if "group_by" in raw:
        group_by = raw["group_by"]
        if not isinstance(group_by, list) or any(g not in LABELS for g in group_by):
            raise ValueError(f"{where}.group_by: expected a list of {', '.join(LABELS)}, got {group_by!r}")
        changes["group_by"] = tuple(group_by)
    for key in ("group_wait", "group_interval", "repeat_interval"):
        if key in raw:
            changes[key] = parse_duration(raw[key], f"{where}.{key}")
    if "send_resolved" in raw:
        if not isinstance(raw["send_resolved"], bool):
            raise ValueError(f"{where}.send_resolved: expected true or false, got {raw['send_resolved']!r}")
        changes["send_resolved"] = raw["send_resolved"]
    if "continue" in raw:
        if not isinstance(raw["continue"], bool):
            raise ValueError(f"{where}.continue: expected true or false, got {raw['continue']!r}")
        changes["continue_"] = raw["continue"]
    match = raw.get("match", {})
    if parent is None and match:
        raise ValueError(f"{where}.match: the root route matches every alert")
    if not isinstance(match, Mapping):
        raise ValueError(f"{where}.match: expected a table of label = value(s), got {match!r}")
    matchers = []
    for name, value in match.items():
        if name not in LABELS:
            raise ValueError(f"{where}.match.{name}: unknown label (use {', '.join(LABELS)})")
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
            raise ValueError(f"{where}.match.{name}: expected a value or a list of values, got {value!r}")
        matchers.append((name, frozenset(values)))
    changes["match"] = tuple(matchers)
    node = replace(base, **changes)
    children = raw.get("routes", [])
    if not isinstance(children, list):
        raise ValueError(f"{where}.routes: expected a list of tables, got {children!r}")
    kids = tuple(parse_route(c, receivers, f"{where}.routes[{i}]", node) for i, c in enumerate(children))
    return replace(node, routes=kids)
