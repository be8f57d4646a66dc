"""Discover carrier adapters: the built-ins and third-party plugins, the same way.

Every adapter is an :class:`~carriers.adapter.AdapterInfo` published under the
``parcel_monitor.carriers`` entry-point group. Each plugin loads in its own ``try`` so a
broken one is reported (``Registry.failures``, shown on ``/readyz``) and never takes the
others down.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points

import structlog

from carriers.adapter import AdapterInfo
from carriers.errors import PluginError

ENTRY_POINT_GROUP = "parcel_monitor.carriers"

log = structlog.get_logger("carriers.registry")


@dataclass
class Registry:
    """The adapters that loaded, and why the others did not."""

    adapters: dict[str, AdapterInfo] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    def get(self, code: str) -> AdapterInfo:
        """Return the adapter registered under ``code``."""
        try:
            return self.adapters[code]
        except KeyError:
            known = ", ".join(sorted(self.adapters)) or "none"
            raise PluginError(f"unknown carrier {code!r} (known: {known})") from None

    def add(self, info: AdapterInfo, source: str = "") -> None:
        """Register one adapter; a second one with the same code is refused."""
        if not isinstance(info, AdapterInfo):
            raise PluginError(f"{source or info!r} is not an AdapterInfo")
        if info.code in self.adapters:
            raise PluginError(f"carrier code {info.code!r} registered twice ({source})")
        self.adapters[info.code] = info


def load(eps: Iterable[EntryPoint] | None = None) -> Registry:
    """Load every adapter published under the entry-point group."""
    registry = Registry()
    for ep in eps if eps is not None else entry_points(group=ENTRY_POINT_GROUP):
        try:
            info = ep.load()
            registry.add(info, source=ep.value)
        except Exception as err:  # noqa: BLE001 - a broken plugin must not take the others down
            registry.failures[ep.name] = f"{type(err).__name__}: {err}"
            log.error("carrier.plugin_failed", plugin=ep.name, target=ep.value, error=str(err))
    if "sandbox" not in registry.adapters and "sandbox" not in registry.failures:
        # Running from a source tree that was never installed: the built-in is still there.
        from carriers.sandbox import INFO

        registry.add(INFO, source="carriers.sandbox:INFO")
    return registry
