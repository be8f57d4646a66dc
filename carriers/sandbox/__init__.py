"""The sandbox carrier, registered like any plugin."""

from __future__ import annotations

from typing import Any

from carriers.adapter import INTERCEPT, TRACK, AdapterInfo
from carriers.sandbox.client import CODE, SandboxCarrier
from carriers.sandbox.settings import SandboxSettings
from carriers.sandbox.world import World


def _build(settings: dict[str, Any], context: dict[str, Any]) -> SandboxCarrier:
    parsed = SandboxSettings.from_mapping(settings)
    world = None if context.get("scripted") else World(parsed)
    return SandboxCarrier(context["clock"], world)


INFO = AdapterInfo(
    code=CODE,
    label="模拟快递 Sandbox",
    factory=_build,
    capabilities=frozenset({TRACK, INTERCEPT}),
    settings_type=SandboxSettings,
)

__all__ = ["CODE", "INFO", "SandboxCarrier", "SandboxSettings", "World"]
