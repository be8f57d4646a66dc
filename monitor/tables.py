"""Declared TOML tables: a strict pydantic base, and errors that name the key, its line and a suggestion.

``tomllib`` gives no positions, so :func:`line_of` finds a key's line by scanning the text for its
table header and key. Used by the settings file (:mod:`monitor.config`) and the rule tables
(:mod:`monitor.rules.ruleset`).
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Collection, Mapping
from typing import Annotated, Any, ClassVar, Union, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from monitor.errors import ConfigError


def did_you_mean(key: str, known: Collection[str]) -> str:
    """Return `` (did you mean 'x'?)`` for the known key closest to a typo, or nothing."""
    close = difflib.get_close_matches(key, sorted(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check(test: Any, expected: str) -> BeforeValidator:
    """Refuse a value for which ``test`` is false with "expected …, got <value>"."""

    def check(value: Any) -> Any:
        if not test(value):
            raise ValueError(f"expected {expected}, got {value!r}")
        return value

    return BeforeValidator(check)


def number(value: Any) -> bool:
    """Tell whether a TOML value is an integer or a float (a boolean is neither)."""
    return not isinstance(value, bool) and isinstance(value, int | float)


def whole_at_least(minimum: int) -> BeforeValidator:
    """Refuse anything but a whole number ≥ ``minimum``."""
    test = lambda v: not isinstance(v, bool) and isinstance(v, int) and v >= minimum  # noqa: E731
    return check(test, f"a whole number ≥ {minimum}")


def one_of(*choices: str) -> BeforeValidator:
    """Refuse anything but one of ``choices``."""
    return check(lambda v: v in choices, f"one of {', '.join(choices)}")


class Table(BaseModel):
    """A TOML table: unknown keys refused, values not coerced (``"5"`` is not 5)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)
    #: What an unknown key of this table is called in messages ("unknown threshold", "unknown rule id").
    noun: ClassVar[str] = "key"


def validate(
    model: type[Table], raw: Any, prefix: tuple[str | int, ...] = (), error: type[ConfigError] = ConfigError
) -> Any:
    """Validate ``raw`` against ``model``; the first problem becomes a ConfigError naming its key."""
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        problems = err.errors(include_url=False)
        # A typo'd key is the cause of the "missing" or default-value errors beside it: name it first.
        problem = next((p for p in problems if p["type"] == "extra_forbidden"), problems[0])
        raise error(describe(model, prefix, problem)) from None


#: What a value of the wrong TOML type should have been, by pydantic's error type.
EXPECTED = {
    "model_type": "a table", "model_attributes_type": "a table", "dict_type": "a table", "list_type": "a list",
    "string_type": "a string", "int_type": "a whole number", "float_type": "a number", "bool_type": "true or false",
}  # fmt: skip


def describe(model: type[BaseModel], prefix: tuple[str | int, ...], problem: Mapping[str, Any]) -> str:
    """Say what is wrong where, in the words of the file: ``database.ulr: unknown key (did you mean 'url'?)``."""
    loc = tuple(problem["loc"])
    where = dotted(prefix + loc)
    kind = problem["type"]
    if kind == "extra_forbidden":
        key, owner = str(loc[-1]), model_at(model, loc[:-1])
        known = [f.alias or name for name, f in owner.model_fields.items()] if owner else []
        if f"{key}_env" in known:
            return f"{where}: do not write secrets in the file; set {key}_env to a variable's name"
        hint = did_you_mean(key, known) or (f" (known: {', '.join(known)})" if known else "")
        return f"{where}: unknown {getattr(owner, 'noun', 'key')}{hint}"
    if kind == "value_error":
        return f"{where}: {problem['ctx']['error']}"
    if kind == "missing":
        return f"{where}: missing"
    expected = EXPECTED.get(kind, problem["msg"].lower())
    return f"{where}: expected {expected}, got {problem['input']!r}"


def model_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """Return the model of the table at ``loc`` inside ``model`` (through lists and tables of tables)."""
    annotation: Any = model
    for part in loc:
        annotation = _inner(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields = {f.alias or name: f for name, f in annotation.model_fields.items()}
            if part not in fields:
                return None
            annotation = fields[part].annotation  # type: ignore[index]
        elif get_origin(annotation) in (list, tuple, dict):
            annotation = get_args(annotation)[0 if get_origin(annotation) is tuple else -1]
    annotation = _inner(annotation)
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _inner(annotation: Any) -> Any:
    """Strip ``Annotated`` and ``| None`` from a field's type."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if isinstance(annotation, types.UnionType) or get_origin(annotation) is Union:
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    return annotation


def dotted(path: tuple[str | int, ...]) -> str:
    """Write a key path as the messages do: ``alerts.channels[0].type``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


_DOTTED = r"""(?:[\w-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[\w-]+|"[^"]*"|'[^']*'))*"""
_HEADER = re.compile(rf"^\s*(\[\[?)\s*({_DOTTED})\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(rf"^\s*({_DOTTED})\s*=")
_PART = re.compile(r""""([^"]*)"|'([^']*)'|([\w-]+)""")
_PATH = re.compile(r"^([\w-]+(?:\.[\w-]+|\[\d+\])*): (?:([\w-]+): )?")


def _parts(text: str) -> tuple[str, ...]:
    return tuple(next(g for g in m.groups() if g is not None) for m in _PART.finditer(text))


def key_lines(text: str) -> dict[tuple[str | int, ...], int]:
    """Map every table and key path of a TOML text to the line that writes it (tomllib gives no positions).

    Arrays of tables get their index (``("alerts", "channels", 1, "type")``); keys inside inline
    tables are not listed, so a lookup falls back to the line of the enclosing key.
    """
    found: dict[tuple[str | int, ...], int] = {}
    arrays: dict[tuple[str | int, ...], int] = {}
    table: tuple[str | int, ...] = ()

    def resolve(parts: tuple[str, ...]) -> tuple[str | int, ...]:
        path: tuple[str | int, ...] = ()
        for part in parts:
            path += (part,)
            if path in arrays:
                path += (arrays[path] - 1,)
        return path

    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            parts = _parts(header.group(2))
            if header.group(1) == "[[":
                parent = (*resolve(parts[:-1]), parts[-1])
                arrays[parent] = arrays.get(parent, 0) + 1
                found.setdefault(parent, number)
            table = resolve(parts)
            found.setdefault(table, number)
            continue
        key = _KEY.match(line)
        if key:
            parts = _parts(key.group(1))
            for i in range(1, len(parts) + 1):
                found.setdefault(table + parts[:i], number)
    return found


def line_of(text: str, message: str) -> int | None:
    """Return the line of the key a message starts with (``database.ulr: …``), or of its nearest table."""
    m = _PATH.match(message)
    if m is None:
        return None
    path: tuple[str | int, ...] = ()
    for name, index in re.findall(r"([\w-]+)|\[(\d+)\]", m.group(1)):
        path += (int(index),) if index else (name,)
    if m.group(2):
        path += (m.group(2),)
    lines = key_lines(text)
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return None
