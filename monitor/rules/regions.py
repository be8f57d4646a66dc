"""Chinese provinces and the region classes that pick a stall threshold.

A shipment within one province or one region group (江浙沪皖, 京津冀) is ``same_region``;
one touching a remote province (新疆, 西藏, …) in another province is ``remote``; anything
else, including a shipment with no province given, is ``cross_province``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

SAME_REGION = "same_region"
CROSS_PROVINCE = "cross_province"
REMOTE = "remote"
REGION_CLASSES = (SAME_REGION, CROSS_PROVINCE, REMOTE)

#: Short name → full official name of every provincial-level division.
PROVINCES = {
    "北京": "北京市", "天津": "天津市", "上海": "上海市", "重庆": "重庆市",
    "河北": "河北省", "山西": "山西省", "辽宁": "辽宁省", "吉林": "吉林省", "黑龙江": "黑龙江省",
    "江苏": "江苏省", "浙江": "浙江省", "安徽": "安徽省", "福建": "福建省", "江西": "江西省",
    "山东": "山东省", "河南": "河南省", "湖北": "湖北省", "湖南": "湖南省", "广东": "广东省",
    "海南": "海南省", "四川": "四川省", "贵州": "贵州省", "云南": "云南省", "陕西": "陕西省",
    "甘肃": "甘肃省", "青海": "青海省", "台湾": "台湾省",
    "内蒙古": "内蒙古自治区", "广西": "广西壮族自治区", "西藏": "西藏自治区",
    "宁夏": "宁夏回族自治区", "新疆": "新疆维吾尔自治区",
    "香港": "香港特别行政区", "澳门": "澳门特别行政区",
}  # fmt: skip
_BY_NAME = {full: short for short, full in PROVINCES.items()} | {short: short for short in PROVINCES}


def normalize_province(name: str) -> str:
    """Return the short name of a province given as ``浙江``, ``浙江省`` or the like."""
    cleaned = name.strip()
    try:
        return _BY_NAME[cleaned]
    except KeyError:
        raise ValueError(f"unknown province {name!r}") from None


@dataclass(frozen=True, slots=True)
class Regions:
    """Which provinces share a region and which are remote, as a preset declares them."""

    groups: tuple[frozenset[str], ...]
    remote: frozenset[str]

    @classmethod
    def build(cls, groups: Iterable[Iterable[str]], remote: Iterable[str]) -> Regions:
        """Build from names in any accepted spelling."""
        return cls(
            groups=tuple(frozenset(normalize_province(p) for p in group) for group in groups),
            remote=frozenset(normalize_province(p) for p in remote),
        )

    def classify(self, origin: str | None, destination: str | None) -> str:
        """Return the region class of a shipment between two (short-named) provinces."""
        if not origin or not destination:
            return CROSS_PROVINCE
        if origin == destination or any(origin in g and destination in g for g in self.groups):
            return SAME_REGION
        if origin in self.remote or destination in self.remote:
            return REMOTE
        return CROSS_PROVINCE
