"""The sandbox carrier: answered by a replay scenario, or by a simulated world in the demo.

In ``replay`` the scenario pushes tracking events itself and decides intercepts with
``intercept_result`` lines, which the replay stages here. In the demo, ``track`` asks the
simulated :class:`~carriers.sandbox.world.World` what has happened to a number by now.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from carriers.adapter import Clock
from carriers.model import InterceptResult, Limits, ParcelRef, TrackingResult
from carriers.sandbox.world import World

CODE = "sandbox"


class SandboxCarrier:
    """An in-process carrier with realistic behaviour and no network."""

    code = CODE
    limits = Limits(batch_size=100, requests_per_second=1000.0)

    def __init__(self, clock: Clock, world: World | None = None) -> None:
        self._clock = clock
        self._world = world
        self._first_seen: dict[str, datetime] = {}
        self._staged: dict[str, InterceptResult] = {}
        self._expected_later: set[str] = set()
        #: Every intercept request received, in order: (idempotency_key, tracking_no).
        self.intercept_requests: list[tuple[str, str]] = []
        self._answers: dict[str, InterceptResult] = {}
        self._intercepted_at: dict[str, datetime] = {}

    def register(self, tracking_no: str, shipped_at: datetime) -> None:
        """Tell the world when a parcel was shipped (otherwise: when first tracked)."""
        self._first_seen.setdefault(tracking_no, shipped_at)

    def stage_verdict(self, tracking_no: str, accepted: bool, reason: str = "") -> None:
        """Decide how the next intercept request for ``tracking_no`` is answered."""
        self._staged[tracking_no] = InterceptResult(accepted=accepted, reason=reason)
        self._expected_later.discard(tracking_no)

    def expect_verdict_later(self, tracking_no: str) -> None:
        """Answer intercepts of ``tracking_no`` as undecided: the verdict comes later."""
        self._expected_later.add(tracking_no)

    async def track(self, numbers: Sequence[str]) -> list[TrackingResult]:
        """Return what the simulated world did to each number up to now."""
        now = self._clock.now()
        results = []
        for number in numbers:
            if self._world is None:
                results.append(TrackingResult(CODE, number, problem="not_found", problem_code="scripted"))
                continue
            shipped_at = self._first_seen.setdefault(number, now)
            events = self._world.events(number, shipped_at, now, self._intercepted_at.get(number))
            results.append(TrackingResult(CODE, number, tuple(events)))
        return results

    async def intercept(self, parcel: ParcelRef, reason: str, idempotency_key: str) -> InterceptResult:
        """Answer an intercept request; a repeated idempotency key gets the first answer."""
        self.intercept_requests.append((idempotency_key, parcel.tracking_no))
        if idempotency_key in self._answers:
            return self._answers[idempotency_key]
        number = parcel.tracking_no
        if number in self._staged:
            answer = self._staged[number]
        elif number in self._expected_later:
            answer = InterceptResult(accepted=None, reason="pending")
        elif self._world is not None:
            answer = self._world.intercept_verdict(number)
        else:
            answer = InterceptResult(accepted=True)
        if answer.accepted:
            self._intercepted_at.setdefault(number, self._clock.now())
        self._answers[idempotency_key] = answer
        return answer
