"""Rule definitions: a platform preset, the merchant's overrides, resolved per carrier and shop.

Precedence, weakest first: preset → ``[rules.thresholds]`` → overrides naming only a
carrier → overrides naming only a shop → overrides naming both.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from typing import Annotated, Any

from pydantic import Field, model_validator

from monitor.errors import RuleConfigError
from monitor.rules.regions import REGION_CLASSES, Regions
from monitor.tables import Table, check, number, one_of, validate

RULE_IDS = (
    "pickup_at_risk",
    "pickup_overdue",
    "stalled",
    "carrier_exception",
    "returned",
    "delivery_overdue",
    "lost_suspected",
    "intercept_failed",
    "slow_for_route",
)
ACTION_KINDS = ("ticket", "alert", "reshipment_suggestion")
SEVERITIES = ("info", "warning", "critical")
PRESETS = ("tmall", "douyin")
SCALAR_THRESHOLDS = (
    "pickup_hours",
    "presale_pickup_hours",
    "pickup_risk_hours",
    "after_pickup_hours",
    "out_for_delivery_hours",
    "available_for_pickup_hours",
    "lost_after_pickup_hours",
)
REGIONAL_THRESHOLDS = ("transit_hours", "lost_transit_hours")


# The shape of ``[rules]``: one declared model per table, each refusing keys it does not declare.
# Values are checked here; build_ruleset merges them over the preset.
Hours = Annotated[float | None, check(lambda v: number(v) and v >= 0, "a number of hours ≥ 0")]
Yuan = Annotated[float | None, check(lambda v: number(v) and v >= 0, "a number of yuan ≥ 0")]


class RegionalTable(Table):
    """Hours per region class (``transit_hours = {same_region = 48, …}``)."""

    noun = "region class"
    same_region: Hours = None
    cross_province: Hours = None
    remote: Hours = None


class ThresholdsTable(Table):
    """``[rules.thresholds]``: shop-wide changes to the preset, in hours."""

    noun = "threshold"
    pickup_hours: Hours = None
    presale_pickup_hours: Hours = None
    pickup_risk_hours: Hours = None
    after_pickup_hours: Hours = None
    out_for_delivery_hours: Hours = None
    available_for_pickup_hours: Hours = None
    lost_after_pickup_hours: Hours = None
    transit_hours: RegionalTable | None = None
    lost_transit_hours: RegionalTable | None = None


class OverrideTable(ThresholdsTable):
    """One ``[[rules.overrides]]`` entry: thresholds for a carrier, a shop, or both."""

    carrier: str | None = None
    shop: str | None = None

    @model_validator(mode="after")
    def _names_whom(self) -> OverrideTable:
        if self.carrier is None and self.shop is None:
            raise ValueError("name a carrier, a shop or both")
        return self


class CompensationTable(Table):
    """What the platform charges: ``{rate, min, max}`` (a share of the order amount, clamped in yuan)."""

    rate: Annotated[float, check(lambda v: number(v) and 0 <= v <= 1, "a share from 0 to 1")]
    min: Yuan = None
    max: Yuan = None


class RuleTable(Table):
    """``[rules.rule.<id>]``: what one rule does once it fires."""

    noun = "rule setting"
    enabled: Annotated[bool | None, check(lambda v: isinstance(v, bool), "true or false")] = None
    severity: Annotated[str | None, one_of(*SEVERITIES)] = None
    actions: Annotated[
        list[str] | None,
        check(
            lambda v: isinstance(v, list) and all(a in ACTION_KINDS for a in v), f"a list of {', '.join(ACTION_KINDS)}"
        ),
    ] = None
    compensation: CompensationTable | None = None


class RuleTables(Table):
    """``[rules.rule]``: one table per rule id."""

    noun = "rule id"
    pickup_at_risk: RuleTable | None = None
    pickup_overdue: RuleTable | None = None
    stalled: RuleTable | None = None
    carrier_exception: RuleTable | None = None
    returned: RuleTable | None = None
    delivery_overdue: RuleTable | None = None
    lost_suspected: RuleTable | None = None
    intercept_failed: RuleTable | None = None
    slow_for_route: RuleTable | None = None


class RegionsTable(Table):
    """``[rules.regions]``: provinces that count as one region, and the remote ones (checked by Regions.build)."""

    groups: Any = None
    remote: Any = None


class RulesTable(Table):
    """``[rules]``."""

    #: Checked by :func:`preset_document`, which names the presets.
    preset: str = "tmall"
    thresholds: ThresholdsTable | None = None
    overrides: list[OverrideTable] = Field(default_factory=list)
    rule: RuleTables | None = None
    regions: RegionsTable | None = None


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Every duration the rules wait, in hours."""

    pickup_hours: float
    presale_pickup_hours: float
    pickup_risk_hours: float
    after_pickup_hours: float
    out_for_delivery_hours: float
    available_for_pickup_hours: float
    lost_after_pickup_hours: float
    transit_hours: dict[str, float]
    lost_transit_hours: dict[str, float]

    def merged(self, raw: dict[str, Any], where: str) -> Thresholds:
        """Return a copy with the keys of ``raw`` overridden, checking each value."""
        changes: dict[str, Any] = {}
        for key, value in raw.items():
            if key in SCALAR_THRESHOLDS:
                changes[key] = _hours(value, f"{where}.{key}")
            elif key in REGIONAL_THRESHOLDS:
                if not isinstance(value, dict):
                    raise RuleConfigError(f"{where}.{key}: expected a table of region classes, got {value!r}")
                table = dict(getattr(self, key))
                for region, hours in value.items():
                    if region not in REGION_CLASSES:
                        raise RuleConfigError(
                            f"{where}.{key}.{region}: unknown region class (use {', '.join(REGION_CLASSES)})"
                        )
                    table[region] = _hours(hours, f"{where}.{key}.{region}")
                changes[key] = table
            else:
                raise RuleConfigError(f"{where}.{key}: unknown threshold (got value {value!r})")
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class Compensation:
    """What a platform charges the merchant: a share of the order amount, clamped."""

    rate: float
    min_yuan: float
    max_yuan: float

    def fen(self, amount_fen: int | None) -> int | None:
        """Return the compensation in fen for an order of ``amount_fen``, or None if unknown."""
        if amount_fen is None:
            return None
        raw = amount_fen * self.rate
        return round(min(max(raw, self.min_yuan * 100), self.max_yuan * 100))


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """How one rule behaves once it fires."""

    rule: str
    enabled: bool
    severity: str
    actions: tuple[str, ...]
    compensation: Compensation | None


@dataclass(frozen=True, slots=True)
class Override:
    """Thresholds for one carrier, one shop, or one carrier in one shop."""

    carrier: str | None
    shop: str | None
    thresholds: dict[str, Any]


@dataclass
class RuleSet:
    """The rules in force: specs per rule id and thresholds per (carrier, shop)."""

    preset: str
    base: Thresholds
    regions: Regions
    specs: dict[str, RuleSpec]
    overrides: tuple[Override, ...] = ()
    _cache: dict[tuple[str, str], Thresholds] = field(default_factory=dict, repr=False)

    def thresholds(self, carrier: str, shop: str) -> Thresholds:
        """Return the thresholds for a parcel of ``carrier`` sold by ``shop``."""
        key = (carrier, shop)
        found = self._cache.get(key)
        if found is None:
            found = self.base
            ranked = sorted(
                (o for o in self.overrides if o.carrier in (None, carrier) and o.shop in (None, shop)),
                key=lambda o: (o.shop is not None, o.carrier is not None),
            )
            for o in ranked:
                found = found.merged(o.thresholds, "rules.overrides")
            self._cache[key] = found
        return found

    def spec(self, rule: str) -> RuleSpec:
        """Return the spec of one rule id."""
        return self.specs[rule]


def _hours(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise RuleConfigError(f"{where}: expected a number of hours ≥ 0, got {value!r}")
    return float(value)


@cache
def preset_document(name: str) -> dict[str, Any]:
    """Read a shipped preset."""
    if name not in PRESETS:
        raise RuleConfigError(f"rules.preset: unknown preset {name!r} (choose from {', '.join(PRESETS)})")
    text = resources.files("monitor.rules").joinpath("presets", f"{name}.toml").read_text("utf-8")
    return tomllib.loads(text)


def _spec(rule: str, raw: dict[str, Any], where: str) -> RuleSpec:
    unknown = set(raw) - {"enabled", "severity", "actions", "compensation"}
    if unknown:
        key = sorted(unknown)[0]
        raise RuleConfigError(f"{where}.{key}: unknown rule setting (got value {raw[key]!r})")
    severity = raw.get("severity", "warning")
    if severity not in SEVERITIES:
        raise RuleConfigError(f"{where}.severity: expected one of {', '.join(SEVERITIES)}, got {severity!r}")
    actions = raw.get("actions", [])
    if not isinstance(actions, list) or any(a not in ACTION_KINDS for a in actions):
        raise RuleConfigError(f"{where}.actions: expected a list of {', '.join(ACTION_KINDS)}, got {actions!r}")
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise RuleConfigError(f"{where}.enabled: expected true or false, got {enabled!r}")
    comp = raw.get("compensation")
    compensation = None
    if comp is not None:
        if not isinstance(comp, dict) or set(comp) - {"rate", "min", "max"} or "rate" not in comp:
            raise RuleConfigError(f"{where}.compensation: expected {{rate, min, max}}, got {comp!r}")
        rate = comp["rate"]
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
            raise RuleConfigError(f"{where}.compensation.rate: expected a share from 0 to 1, got {rate!r}")
        compensation = Compensation(
            float(rate),
            _hours(comp.get("min", 0), f"{where}.compensation.min"),
            _hours(comp.get("max", 1e12), f"{where}.compensation.max"),
        )
    return RuleSpec(rule, enabled, severity, tuple(actions), compensation)


def build_ruleset(rules: dict[str, Any] | None = None) -> RuleSet:
    """Build the rule set from the ``[rules]`` table of the config (preset plus overrides)."""
    rules = dict(rules or {})
    table: RulesTable = validate(RulesTable, rules, ("rules",), RuleConfigError)
    doc = preset_document(table.preset)
    t = doc["thresholds"]
    base = Thresholds(
        **{k: float(t[k]) for k in SCALAR_THRESHOLDS},
        transit_hours={k: float(v) for k, v in t["transit_hours"].items()},
        lost_transit_hours={k: float(v) for k, v in t["lost_transit_hours"].items()},
    )
    base = base.merged(rules.get("thresholds", {}), "rules.thresholds")
    regions_doc = doc["regions"] | rules.get("regions", {})
    try:
        regions = Regions.build(regions_doc["groups"], regions_doc["remote"])
    except (ValueError, KeyError, TypeError) as err:
        raise RuleConfigError(f"rules.regions: {err}") from err
    changes = rules.get("rule", {})
    specs = {rule: _spec(rule, doc["rules"][rule] | changes.get(rule, {}), f"rules.rule.{rule}") for rule in RULE_IDS}
    overrides = []
    for raw in rules.get("overrides", []):
        raw = dict(raw)
        carrier, shop = raw.pop("carrier", None), raw.pop("shop", None)
        overrides.append(Override(carrier, shop, raw))
    return RuleSet(doc["name"], base, regions, specs, tuple(overrides))
