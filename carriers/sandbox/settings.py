"""Settings of the sandbox carrier (no credentials: it never leaves the process)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SandboxSettings:
    """How the simulated world behaves; shares of parcels per fate, the rest arrive fine."""

    seed: int = 0
    never_picked_up: float = 0.05
    stall_in_transit: float = 0.06
    delivery_failed: float = 0.04
    returned: float = 0.02
    lost: float = 0.01
    intercept_acceptance: float = 0.9

    @classmethod
    def from_mapping(cls, raw: dict[str, object], environ: Mapping[str, str] | None = None) -> SandboxSettings:
        """Build settings from a config table, naming the key of any bad value (no secrets to read)."""
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"unknown sandbox setting {unknown[0]!r} (known: {', '.join(sorted(known))})")
        values: dict[str, object] = {}
        for key, value in raw.items():
            if key == "seed":
                if not isinstance(value, int) or isinstance(value, bool):
                    raise ValueError(f"seed must be an integer, got {value!r}")
            elif not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1:
                raise ValueError(f"{key} must be a share between 0 and 1, got {value!r}")
            values[key] = value
        return cls(**values)  # type: ignore[arg-type]
