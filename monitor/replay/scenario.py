"""Read a scenario (docs/replay.md): one JSON object per line, checked whole before anything runs.

The reader streams: :func:`steps` yields one parsed line at a time, so a month of lines is
never held in memory; :func:`survey` is the checking pass that ``replay`` makes over the
whole file before running anything (and keeps only what the run needs up front).

Whatever the file holds — bytes that are not UTF-8, JSON nested thousands deep, integers of
thousands of digits, years that overflow in UTC — the reader raises :class:`ScenarioError` with
the line number, never another exception.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from carriers.model import ExceptionReason, InterceptResult, Status, TrackingEvent
from monitor.actions.intercepts import REFUND_TYPES, RefundRequest
from monitor.clock import as_utc
from monitor.errors import ScenarioError, ShipmentError
from monitor.intake.shipments import Shipment
from monitor.tables import did_you_mean

REQUIRED = {
    "shipment": ("at", "order_id", "carrier", "tracking_no"),
    "tracking": ("at", "carrier", "tracking_no", "status"),
    "refund": ("at", "order_id", "refund_id", "type"),
    "intercept_result": ("at", "carrier", "tracking_no", "accepted"),
    "end": ("at",),
}
#: The other keys each kind may have (docs/replay.md); anything else is a typo such as ``amout``.
OPTIONAL = {
    "shipment": (
        "shipped_at", "pickup_deadline", "promised_delivery", "presale", "shop", "origin_province",
        "destination_province", "amount",
    ),
    "tracking": ("time", "reason", "location", "description"),
    "refund": (),
    "intercept_result": ("reason",),
    "end": (),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Step:
    """One scenario line, parsed: ``payload`` is a Shipment, TrackingEvent, RefundRequest, …"""

    line: int
    kind: str
    at: datetime
    payload: Any
    offset: Any = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """An ``intercept_result`` line."""

    carrier: str
    tracking_no: str
    answer: InterceptResult


def _lines(lines: Iterable[str | bytes]) -> Iterator[tuple[int, str]]:
    """Yield (number, text) of each line; a line that is not UTF-8 is a ScenarioError, not a decode error."""
    iterator = iter(lines)
    number = 0
    while True:
        number += 1
        try:
            text = next(iterator)
        except StopIteration:
            return
        except UnicodeDecodeError:  # a text file decodes in blocks: the bad byte is on this line or a later one
            raise ScenarioError(number, "not UTF-8 text (here or on a following line)") from None
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError:
                raise ScenarioError(number, "not UTF-8 text") from None
        yield number, text


@dataclass
class Survey:
    """What the checking pass keeps of a whole scenario: what the run must know before its first line."""

    lines: int = 0  # lines of the file, blank ones included (the progress bar's total)
    steps: int = 0
    carriers: set[str] = field(default_factory=set)
    #: (carrier, tracking number) of every ``intercept_result`` line: its intercept is answered later.
    verdicts: set[tuple[str, str]] = field(default_factory=set)
    first: Step | None = None

    def add(self, step: Step) -> None:
        """Count one step."""
        if self.first is None:
            self.first = step
        self.steps += 1
        if step.kind in ("shipment", "tracking", "intercept_result"):
            self.carriers.add(step.payload.carrier)
        if step.kind == "intercept_result":
            self.verdicts.add((step.payload.carrier, step.payload.tracking_no))


def parse(
    lines: Iterable[str | bytes], *, strict: bool = False, warn: Callable[[int, str], None] | None = None
) -> list[Step]:
    """Parse and check every line into a list; raise ScenarioError at the first bad one (see :func:`steps`)."""
    return list(steps(lines, strict=strict, warn=warn))


def survey(
    lines: Iterable[str | bytes], *, strict: bool = False, warn: Callable[[int, str], None] | None = None
) -> Survey:
    """Check every line without keeping them; raise ScenarioError at the first bad one."""
    found = Survey()
    counted = _Counted(lines)
    for step in steps(counted, strict=strict, warn=warn):
        found.add(step)
    found.lines = counted.count
    return found


class _Counted:
    """Lines, counted as they are read."""

    def __init__(self, lines: Iterable[str | bytes]) -> None:
        self._lines = iter(lines)
        self.count = 0

    def __iter__(self) -> Iterator[str | bytes]:
        return self

    def __next__(self) -> str | bytes:
        line = next(self._lines)
        self.count += 1
        return line


def steps(
    lines: Iterable[str | bytes], *, strict: bool = False, warn: Callable[[int, str], None] | None = None
) -> Iterator[Step]:
    """Yield each line parsed and checked, in order; raise ScenarioError at the first bad one.

    A key unknown for its kind is dropped and reported through ``warn(line, message)``, or, when
    ``strict``, is a ScenarioError: a typo (``amout``) must not silently lose the order amount.
    """
    last: datetime | None = None
    end: int | None = None
    for number, text in _lines(lines):
        if not text.strip():
            continue
        if end is not None:
            raise ScenarioError(number, f"comes after the end line (line {end})")
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as err:
            raise ScenarioError(number, f"not valid JSON ({err.msg} at column {err.colno})") from None
        except RecursionError:
            raise ScenarioError(number, "not valid JSON (nested too deeply)") from None
        except ValueError as err:  # e.g. an integer of more than 4,300 digits
            raise ScenarioError(number, f"not valid JSON ({err})") from None
        if not isinstance(raw, dict):
            raise ScenarioError(number, f"expected a JSON object, got {type(raw).__name__}")
        raw = _known_keys(number, raw, strict, warn)
        step = _step(number, raw)
        if last is not None and step.at < last:
            raise ScenarioError(number, f"out of time order: at {raw['at']} is before the previous line")
        last = step.at
        if step.kind == "end":
            end = number
        yield step


def _known_keys(
    number: int, raw: dict[str, Any], strict: bool, warn: Callable[[int, str], None] | None
) -> dict[str, Any]:
    """Return ``raw`` without keys its kind does not know, warning about each (or raising when strict)."""
    kind = raw.get("kind")
    if not isinstance(kind, str) or kind not in REQUIRED:
        return raw  # _step names the unknown kind
    known = ("kind", *REQUIRED[kind], *OPTIONAL[kind])
    unknown = [key for key in raw if key not in known]
    for key in unknown:
        message = f"unknown key {key!r} for kind {kind!r}{did_you_mean(key, known)}"
        if strict:
            raise ScenarioError(number, message)
        if warn is not None:
            warn(number, f"{message}; the line is used without it")
    return {k: v for k, v in raw.items() if k not in unknown} if unknown else raw


def _step(number: int, raw: dict[str, Any]) -> Step:
    kind = raw.get("kind")
    if not isinstance(kind, str) or kind not in REQUIRED:  # an array or object cannot be looked up
        raise ScenarioError(number, f"unknown kind {kind!r} (expected one of {', '.join(REQUIRED)})")
    for key in REQUIRED[kind]:
        if raw.get(key) in (None, ""):
            raise ScenarioError(number, f"missing required key {key!r} for kind {kind!r}")
    at = _time(number, raw, "at")
    offset = datetime.fromisoformat(raw["at"]).tzinfo
    try:
        payload = _payload(number, kind, raw, at)
    except ShipmentError as err:
        raise ScenarioError(number, f"bad {err.field}: {err}") from None
    except ArithmeticError as err:  # an amount or a time out of range (Decimal overflow, a year past UTC's range)
        raise ScenarioError(number, f"a value out of range ({type(err).__name__})") from None
    return Step(number, kind, at, payload, offset)


def _payload(number: int, kind: str, raw: dict[str, Any], at: datetime) -> Any:
    if kind == "shipment":
        return Shipment.parse(raw, default_shipped_at=at)
    if kind == "tracking":
        status = _choice(number, raw, "status", Status)
        reason = None
        if raw.get("reason") not in (None, ""):
            if status is not Status.EXCEPTION:
                raise ScenarioError(number, f"reason {raw['reason']!r} given with status {status.value!r}")
            reason = _choice(number, raw, "reason", ExceptionReason)
        elif status is Status.EXCEPTION:
            reason = ExceptionReason.OTHER
        return TrackingEvent(
            carrier=_text(number, raw, "carrier"),
            tracking_no=_text(number, raw, "tracking_no"),
            time=_time(number, raw, "time") if raw.get("time") else at,
            status=status,
            raw_code=status.value,
            raw_text=str(raw.get("description") or ""),
            location=str(raw.get("location") or ""),
            reason=reason,
        )
    if kind == "refund":
        if raw["type"] not in REFUND_TYPES:
            raise ScenarioError(number, f"bad type {raw['type']!r} (expected {' or '.join(REFUND_TYPES)})")
        return RefundRequest(_text(number, raw, "refund_id"), _text(number, raw, "order_id"), raw["type"])
    if kind == "intercept_result":
        if not isinstance(raw["accepted"], bool):
            raise ScenarioError(number, f"bad accepted {raw['accepted']!r} (expected true or false)")
        answer = InterceptResult(accepted=raw["accepted"], reason=str(raw.get("reason") or ""))
        return Verdict(_text(number, raw, "carrier"), _text(number, raw, "tracking_no"), answer)
    return None


def _text(number: int, raw: dict[str, Any], key: str) -> str:
    value = raw[key]
    if not isinstance(value, str):
        raise ScenarioError(number, f"bad {key} {value!r} (expected text)")
    return value


def _choice(number: int, raw: dict[str, Any], key: str, enum: Any) -> Any:
    try:
        return enum(raw[key])
    except ValueError:
        allowed = ", ".join(m.value for m in enum)
        raise ScenarioError(number, f"unknown {key} {raw[key]!r} (expected one of {allowed})") from None


def _time(number: int, raw: dict[str, Any], key: str) -> datetime:
    value = raw[key]
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None:
        raise ScenarioError(number, f"bad time in {key!r}: {value!r} (expected ISO 8601 with an offset)")
    if moment.tzinfo is None:
        raise ScenarioError(number, f"bad time in {key!r}: {value!r} has no offset (write e.g. +08:00)")
    try:
        return as_utc(moment)
    except OverflowError:
        raise ScenarioError(number, f"bad time in {key!r}: {value!r} is out of range in UTC") from None
