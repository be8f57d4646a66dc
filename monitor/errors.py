"""Errors the service raises for bad input; each message says where and what.

::

    MonitorError                    anything the user can fix
    ├── ConfigError                 the settings file (file, key, bad value)
    │   └── RuleConfigError         a rule setting (key, bad value)
    ├── ShipmentError               a shipment field (``field`` names it)
    └── ScenarioError               a replay scenario line (``line`` numbers it)

Carrier failures have their own tree in :mod:`carriers.errors`.
"""

from __future__ import annotations


class MonitorError(ValueError):
    """Bad input that the user can fix."""


class ConfigError(MonitorError):
    """The configuration is wrong; the message says where and what."""


class RuleConfigError(ConfigError):
    """A rule setting is wrong; the message names the key and the bad value."""


class ShipmentError(MonitorError):
    """A shipment field is missing or wrong; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class ScenarioError(MonitorError):
    """A scenario line is wrong; the message starts with its line number."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
