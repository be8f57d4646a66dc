"""Import shipments from a merchant's CSV export: check the file, then store the good rows in batches.

Chinese ERPs export GBK as often as UTF-8 (with or without a BOM), so the encoding is
detected — or chosen — and the whole file is checked before anything is stored: a file that
cannot be read, or lacks a required column, stores nothing. After that a bad row never
stops the import: it is reported with its line, column and value, and the good rows go in.
Storing goes through :class:`~monitor.intake.shipments.ShipmentBook`, which leaves a parcel it
already knows untouched, so importing the same file twice creates nothing the second time —
but a tracking number already watched (or earlier in the file) under another order id is a
bad row, not "already known": one of the two orders is wrong, and a person must say which.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from monitor.errors import MonitorError, ShipmentError
from monitor.intake.shipments import Shipment
from monitor.store.store import Store

COLUMNS = (
    "order_id", "carrier", "tracking_no", "shipped_at", "pickup_deadline", "promised_delivery", "presale", "shop",
    "origin_province", "destination_province", "amount",
)  # fmt: skip
REQUIRED = ("order_id", "carrier", "tracking_no", "shipped_at")
AUTO = "auto"
#: GB18030 decodes everything GBK and GB2312 do, and the rarer characters some ERPs emit too.
ALIASES = {"gbk": "gb18030", "gb2312": "gb18030", "utf-8": "utf-8-sig", "utf8": "utf-8-sig"}


class UnreadableFile(MonitorError):
    """The file cannot be imported at all (unreadable, undecodable, no header, missing column)."""


@dataclass(frozen=True, slots=True)
class BadRow:
    """One row that cannot be imported, and why."""

    line: int
    column: str | None
    message: str

    def __str__(self) -> str:
        return f"{self.column}: {self.message}" if self.column else self.message


@dataclass
class ImportSummary:
    """What an import did."""

    read: int = 0
    created: int = 0
    known: int = 0
    bad: int = 0


@dataclass(frozen=True, slots=True)
class CsvFile:
    """A checked CSV file: its encoding, header and row count."""

    path: Path
    encoding: str
    columns: tuple[str, ...]
    unknown: tuple[str, ...]
    rows: int


def check(path: Path, encoding: str = AUTO) -> CsvFile:
    """Read the whole file once: pick the encoding, check the header, count the rows.

    Raises:
        UnreadableFile: the file cannot be opened or decoded, has no header row, names a
            column twice, or lacks a required column.
    """
    if encoding == AUTO:
        detected = sniff(path)
        try:
            return _scan(path, detected)
        except UnicodeDecodeError as err:
            raise UnreadableFile(
                f"neither UTF-8 nor GBK text ({err.reason}): choose the encoding with --encoding"
            ) from None
    name = ALIASES.get(encoding.lower(), encoding)
    try:
        codecs.lookup(name)
    except LookupError:
        raise UnreadableFile(f"unknown encoding {encoding!r}") from None
    try:
        return _scan(path, name)
    except UnicodeDecodeError as err:
        raise UnreadableFile(f"not valid {encoding} text ({err.reason})") from None


def sniff(path: Path) -> str:
    """Tell UTF-8 (BOM or not) from GBK by decoding the bytes as UTF-8.

    A file whose first non-ASCII bytes are not UTF-8 is GBK (read as GB18030, its superset).
    A file that decodes as UTF-8 for a while and then fails is broken UTF-8, not GBK: reading
    it as GBK would garble every Chinese shop name without a word, so it is refused instead.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    utf8_seen = False
    with _open(path) as raw:
        while True:
            chunk = raw.read(1 << 20)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as err:
                if utf8_seen or not err.object[: err.start].isascii():
                    at = offset - len(err.object) + len(chunk) + err.start
                    raise UnreadableFile(
                        f"not valid UTF-8 at byte {at} although the text before is: "
                        "fix the file or choose the encoding with --encoding"
                    ) from None
                return "gb18030"
            if not chunk:
                return "utf-8-sig"
            utf8_seen = utf8_seen or not chunk.isascii()
            offset += len(chunk)


def _scan(path: Path, encoding: str) -> CsvFile:
    with _open(path) as raw, _text(raw, encoding) as text:
        reader = csv.reader(text)
        header = _header(reader)
        rows = sum(1 for record in _records(reader))
    columns = tuple(header)
    return CsvFile(path, encoding, columns, tuple(c for c in columns if c not in COLUMNS), rows)


def _open(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except OSError as err:
        raise UnreadableFile(f"cannot open: {err.strerror or err}") from None


def _text(raw: BinaryIO, encoding: str) -> io.TextIOWrapper:
    return io.TextIOWrapper(raw, encoding=encoding, errors="strict", newline="")


def _header(reader: Iterator[list[str]]) -> list[str]:
    try:
        first = next(r for r in _records(reader))
    except StopIteration:
        raise UnreadableFile("empty file: no header row") from None
    header = [cell.strip().lower() for cell in first]
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise UnreadableFile(f"column {name!r} appears twice in the header")
        seen.add(name)
    missing = [c for c in REQUIRED if c not in seen]
    if missing:
        names = ", ".join(repr(c) for c in missing)
        raise UnreadableFile(f"missing required column {names} (the header has: {', '.join(header)})")
    return header


def _records(reader: Iterator[list[str]]) -> Iterator[list[str]]:
    """Yield non-blank records; a csv error (a NUL byte, a huge field) makes the file unreadable."""
    try:
        for record in reader:
            if any(cell.strip() for cell in record):
                yield record
    except csv.Error as err:
        line = getattr(reader, "line_num", 0)
        raise UnreadableFile(f"line {line}: not CSV: {err}") from None


def rows(csv_file: CsvFile) -> Iterator[tuple[int, dict[str, str] | BadRow]]:
    """Yield (line number, row) for each data row, the line being the one the row starts on."""
    width = len(csv_file.columns)
    with _open(csv_file.path) as raw, _text(raw, csv_file.encoding) as text:
        reader = csv.reader(text)
        line = 0
        header_read = False
        for record in reader:
            start, line = line + 1, reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            if not header_read:
                header_read = True
            elif len(record) > width:
                extra = ", ".join(repr(v) for v in record[width:])
                yield (
                    start,
                    BadRow(start, None, f"expected {width} fields as in the header, got {len(record)}: {extra}"),
                )
            elif len(record) < width:
                missing = ", ".join(csv_file.columns[len(record) :])
                yield (
                    start,
                    BadRow(start, None, f"expected {width} fields as in the header, got {len(record)} (no {missing})"),
                )
            else:
                yield start, dict(zip(csv_file.columns, record, strict=True))


def parse_row(line: int, row: dict[str, str], carriers: Collection[str]) -> Shipment | BadRow:
    """Turn one CSV row into a shipment, or say which column is wrong and with what value."""
    raw = {key: value.strip() for key, value in row.items() if key in COLUMNS}
    try:
        shipment = Shipment.parse(raw)
    except ShipmentError as err:
        value = raw.get(err.field, "")
        message = str(err).removeprefix(f"{err.field}: ")
        if repr(value) not in message:
            message += f", got {value!r}"
        return BadRow(line, err.field, message)
    if shipment.carrier not in carriers:
        configured = ", ".join(sorted(carriers)) or "none"
        return BadRow(line, "carrier", f"not a configured carrier (configured: {configured}), got {shipment.carrier!r}")
    return shipment


Orders = Callable[[Iterable[tuple[str, str]]], dict[tuple[str, str], str]]


def import_rows(
    numbered_rows: Iterable[tuple[int, dict[str, str] | BadRow]],
    carriers: Collection[str],
    add: Callable[[Sequence[Shipment]], int],
    batch_size: int,
    on_bad: Callable[[BadRow], None],
    on_progress: Callable[[int], None] | None = None,
    orders: Orders | None = None,
) -> ImportSummary:
    """Validate rows and hand the good ones to ``add`` ``batch_size`` at a time.

    ``add`` stores a batch in one transaction and returns how many were new; ``orders`` tells
    the order id each already stored (carrier, tracking number) belongs to, so a number that
    comes back under another order is reported; ``on_progress`` hears how many rows were dealt
    with, once per batch.
    """
    summary = ImportSummary()
    batch: list[tuple[int, Shipment]] = []
    in_file: dict[tuple[str, str], tuple[int, str]] = {}
    done = 0

    def conflict(line: int, s: Shipment, known: dict[tuple[str, str], str]) -> BadRow | None:
        key = (s.carrier, s.tracking_no)
        if key in known and known[key] != s.order_id:
            return BadRow(line, "tracking_no", f"{s.tracking_no!r} is already watched under order {known[key]!r},"
                                               f" not {s.order_id!r}")  # fmt: skip
        first = in_file.setdefault(key, (line, s.order_id))
        if first[1] != s.order_id:
            return BadRow(line, "tracking_no", f"{s.tracking_no!r} is on line {first[0]} under order {first[1]!r},"
                                               f" not {s.order_id!r}")  # fmt: skip
        return None

    def flush() -> None:
        nonlocal done
        if batch:
            known = orders({(s.carrier, s.tracking_no) for _, s in batch}) if orders is not None else {}
            good: list[Shipment] = []
            for line, shipment in batch:
                bad = conflict(line, shipment, known)
                if bad is None:
                    good.append(shipment)
                else:
                    summary.bad += 1
                    on_bad(bad)
            created = add(good) if good else 0
            summary.created += created
            summary.known += len(good) - created
            batch.clear()
        if on_progress is not None and summary.read > done:
            on_progress(summary.read - done)
        done = summary.read

    for line, row in numbered_rows:
        summary.read += 1
        parsed = row if isinstance(row, BadRow) else parse_row(line, row, carriers)
        if isinstance(parsed, BadRow):
            summary.bad += 1
            on_bad(parsed)
            continue
        batch.append((line, parsed))
        if len(batch) >= batch_size:
            flush()
    flush()
    return summary


def stored_orders(store: Store) -> Orders:
    """Return a lookup of the order id each already stored parcel belongs to."""

    def lookup(keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        with store.begin() as uow:
            return {key: row.order_id for key, row in uow.parcels_by_keys(keys).items()}

    return lookup


class DryRun:
    """Stand in for :meth:`ShipmentBook.add`: count what would be new, store nothing."""

    def __init__(self, store: Store | None) -> None:
        #: None: the database has no schema yet, so nothing is stored in it.
        self.store = store
        self.seen: set[tuple[str, str]] = set()

    def add(self, shipments: Sequence[Shipment]) -> int:
        """Return how many of ``shipments`` are neither stored nor earlier in the file."""
        keys = {(s.carrier, s.tracking_no) for s in shipments}
        known: set[tuple[str, str]] = set()
        if self.store is not None:
            with self.store.begin() as uow:
                known = set(uow.parcels_by_keys(keys))
        fresh = keys - known - self.seen
        self.seen |= keys
        return len(fresh)
