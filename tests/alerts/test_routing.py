"""The route tree: Alertmanager's matching, inheritance and `continue`."""

from __future__ import annotations

from datetime import timedelta

import pytest

from monitor.alerts.routing import parse_duration, parse_route, resolve

CHANNELS = {"ops", "oncall", "shop-a", "email"}
TREE = {
    "receiver": "ops",
    "group_by": ["rule", "shop"],
    "group_wait": "30s",
    "routes": [
        {"match": {"severity": "critical"}, "receiver": "oncall", "repeat_interval": "1h", "continue": True},
        {"match": {"shop": ["旗舰店", "专营店"]}, "receiver": "shop-a", "routes": [
            {"match": {"rule": "lost_suspected"}, "receiver": "email", "group_by": ["carrier"]},
        ]},
    ],
}  # fmt: skip


def labels(**kw: str) -> dict[str, str]:
    return {"rule": "stalled", "severity": "warning", "carrier": "sf", "shop": "其他店"} | kw


def receivers(alert: dict[str, str]) -> list[str]:
    return [r.receiver for r in resolve(parse_route(TREE, CHANNELS), alert)]


def test_no_child_matches_the_root_delivers() -> None:
    assert receivers(labels()) == ["ops"]


def test_first_match_stops_unless_continue() -> None:
    assert receivers(labels(shop="旗舰店")) == ["shop-a"]
    assert receivers(labels(severity="critical")) == ["oncall"]  # continue: the shop route does not match
    assert receivers(labels(severity="critical", shop="专营店")) == ["oncall", "shop-a"]


def test_nested_route_and_inheritance() -> None:
    root = parse_route(TREE, CHANNELS)
    (route,) = resolve(root, labels(shop="旗舰店", rule="lost_suspected"))
    assert route.receiver == "email"
    assert route.group_by == ("carrier",)
    assert route.group_wait == timedelta(seconds=30)  # inherited from the root
    oncall = resolve(root, labels(severity="critical"))[0]
    assert oncall.repeat_interval == timedelta(hours=1) and oncall.group_by == ("rule", "shop")


def test_group_key_follows_group_by() -> None:
    root = parse_route(TREE, CHANNELS)
    (route,) = resolve(root, labels(shop="旗舰店"))
    assert route.group_key(labels(shop="旗舰店")) == "rule=stalled,shop=旗舰店"


@pytest.mark.parametrize(
    ("tree", "message"),
    [
        ({}, "alerts.route.receiver: the root route needs a receiver"),
        ({"receiver": "pager"}, "alerts.route.receiver: no alert channel named 'pager'"),
        ({"receiver": "ops", "group_by": ["phone"]}, "alerts.route.group_by: expected a list of rule, severity"),
        ({"receiver": "ops", "group_wait": "soon"}, "alerts.route.group_wait: expected a duration"),
        (
            {"receiver": "ops", "routes": [{"match": {"city": "杭州"}}]},
            "alerts.route.routes[0].match.city: unknown label",
        ),
        (
            {"receiver": "ops", "routes": [{"continue": "yes"}]},
            "alerts.route.routes[0].continue: expected true or false",
        ),
        ({"receiver": "ops", "match": {"rule": "stalled"}}, "alerts.route.match: the root route matches every alert"),
        ({"receiver": "ops", "wait": "1m"}, "alerts.route.wait: unknown route setting"),
    ],
)
def test_errors_name_the_key(tree: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_route(tree, CHANNELS)
    assert str(err.value).startswith(message)


def test_durations() -> None:
    assert parse_duration("90s", "x") == timedelta(seconds=90)
    assert parse_duration("4h", "x") == timedelta(hours=4)
    assert parse_duration("1d", "x") == timedelta(days=1)
