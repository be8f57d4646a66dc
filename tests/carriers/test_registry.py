"""The plugin registry: each plugin loads on its own, and failures are reported, not fatal."""

import sys
import tomllib
import types
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest

from carriers.adapter import AdapterInfo, CarrierAdapter
from carriers.errors import PluginError
from carriers.registry import ENTRY_POINT_GROUP, load
from carriers.sandbox import INFO as SANDBOX

FAKE_MODULE = "parcel_monitor_test_plugin_acme"


def entry_point(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)


def _never_built(settings: dict[str, Any], context: dict[str, Any]) -> CarrierAdapter:
    raise AssertionError("the registry only loads metadata; it never builds an adapter")


@pytest.fixture
def acme(monkeypatch: pytest.MonkeyPatch) -> AdapterInfo:
    """Publish a third-party plugin module, importable by name for the entry point."""
    info = AdapterInfo(code="acme", label="Acme Express", factory=_never_built)
    module = types.ModuleType(FAKE_MODULE)
    module.INFO = info  # type: ignore[attr-defined]
    module.NOT_INFO = object()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, FAKE_MODULE, module)
    return info


def test_a_good_plugin_loads() -> None:
    registry = load([entry_point("sandbox", "carriers.sandbox:INFO")])
    assert registry.get("sandbox") is SANDBOX
    assert registry.failures == {}


def test_a_third_party_plugin_loads_beside_the_builtin(acme: AdapterInfo) -> None:
    registry = load([entry_point("acme", f"{FAKE_MODULE}:INFO")])
    assert registry.get("acme") is acme
    assert registry.get("sandbox") is SANDBOX
    assert registry.failures == {}


def test_a_broken_plugin_is_reported_and_the_others_still_load(acme: AdapterInfo) -> None:
    registry = load(
        [
            entry_point("broken", "no_such_module_for_parcel_monitor:INFO"),
            entry_point("acme", f"{FAKE_MODULE}:INFO"),
        ]
    )
    assert set(registry.failures) == {"broken"}
    assert "ModuleNotFoundError" in registry.failures["broken"]
    assert "no_such_module_for_parcel_monitor" in registry.failures["broken"]
    assert registry.get("acme") is acme
    assert registry.get("sandbox") is SANDBOX


def test_a_plugin_that_is_not_adapter_info_is_reported(acme: AdapterInfo) -> None:
    registry = load([entry_point("odd", f"{FAKE_MODULE}:NOT_INFO")])
    assert "not an AdapterInfo" in registry.failures["odd"]
    assert "odd" not in registry.adapters


def test_a_duplicate_code_is_reported() -> None:
    registry = load(
        [
            entry_point("sandbox", "carriers.sandbox:INFO"),
            entry_point("sandbox_again", "carriers.sandbox:INFO"),
        ]
    )
    assert registry.get("sandbox") is SANDBOX
    assert set(registry.failures) == {"sandbox_again"}
    assert "registered twice" in registry.failures["sandbox_again"]


def test_an_unknown_code_names_the_known_ones(acme: AdapterInfo) -> None:
    registry = load([entry_point("acme", f"{FAKE_MODULE}:INFO")])
    with pytest.raises(PluginError, match=r"unknown carrier 'nope' \(known: acme, sandbox\)"):
        registry.get("nope")


def test_the_installed_entry_points_include_the_sandbox() -> None:
    registry = load()
    assert registry.get("sandbox") is SANDBOX


BUILT_INS = {"sandbox", "sf", "kuaidi100", "zto"}


def test_every_built_in_declared_in_pyproject_loads() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text(encoding="utf-8"))
    declared = pyproject["project"]["entry-points"][ENTRY_POINT_GROUP]
    assert set(declared) == BUILT_INS
    registry = load([entry_point(name, value) for name, value in declared.items()])
    assert registry.failures == {}
    assert set(registry.adapters) == BUILT_INS
    assert all(registry.get(name).code == name for name in BUILT_INS)


def test_the_installed_entry_points_include_every_built_in() -> None:
    registry = load()
    assert set(registry.adapters) >= BUILT_INS, "reinstall (pip install -e .) after changing the entry points"
