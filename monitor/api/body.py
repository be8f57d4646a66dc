"""Read request bodies ourselves, so every refusal names the field and nothing half-parses.

Routes that need the raw bytes (a signature over them) or a field path with a batch index
read the body here rather than through FastAPI's model binding; the OpenAPI document still
shows their schema (see ``app.body_schemas``).

JSON that Python reads but nothing downstream can take is refused here, naming where it is:
nesting deeper than :data:`MAX_DEPTH`, integers of more than :data:`MAX_INT_DIGITS` digits,
``NaN``/``Infinity`` and numbers too large for a float (``1e999999999``), NUL characters
(PostgreSQL refuses them in text) and lone surrogates (``"\\ud800"``: not encodable as UTF-8).
"""

from __future__ import annotations

import json
import math
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from monitor.api.errors import ApiError, field_path, from_validation

M = TypeVar("M", bound=BaseModel)

#: Deepest nesting of arrays and objects accepted (our bodies are three deep).
MAX_DEPTH = 16
#: Longest integer accepted, in digits (2^63 has 19).
MAX_INT_DIGITS = 20


class _Refused:
    """A JSON number the decoder read but we refuse; the walk names its field."""

    def __init__(self, why: str) -> None:
        self.why = why


def _int(text: str) -> int | _Refused:
    digits = len(text.lstrip("-"))
    return int(text) if digits <= MAX_INT_DIGITS else _Refused(f"an integer of {digits} digits is out of range")


def _float(text: str) -> float | _Refused:
    value = float(text)
    return value if math.isfinite(value) else _Refused(f"{text[:24]} is out of range")


def _constant(name: str) -> _Refused:
    return _Refused(f"{name} is not a JSON number")


def parse_json(raw: bytes) -> Any:
    """Decode a JSON body, or refuse it as ``invalid_json`` saying where it broke."""
    try:
        data = json.loads(raw, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_json", "the body is not UTF-8 JSON", field="body") from None
    except json.JSONDecodeError as err:
        where = f"line {err.lineno} column {err.colno}"
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {err.msg} at {where}", field="body") from None
    except RecursionError:
        raise ApiError(400, "invalid_json", f"the body is nested more than {MAX_DEPTH} deep", field="body") from None
    _check(data, [], 0)
    return data


def _check(value: Any, path: list[str | int], depth: int) -> None:
    """Refuse what the decoder marked, and text no database or JSON encoder takes, naming its field."""
    if isinstance(value, _Refused):
        raise ApiError(422, "invalid_field", value.why, field=field_path(path) or "body")
    if isinstance(value, str):
        _check_text(value, path)
        return
    if not isinstance(value, dict | list):
        return
    if depth >= MAX_DEPTH:
        raise ApiError(422, "invalid_field", f"nested deeper than {MAX_DEPTH} levels", field=field_path(path) or "body")
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        if isinstance(key, str):
            _check_text(key, [*path, key] if _encodable(key) else [*path, "?"])
        _check(item, [*path, key], depth + 1)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_text(text: str, path: list[str | int]) -> None:
    where = field_path(path) or "body"
    if "\x00" in text:
        raise ApiError(422, "invalid_field", "text must not contain NUL (\\u0000)", field=where)
    if not text.isascii() and not _encodable(text):
        raise ApiError(422, "invalid_field", "text holds a lone surrogate (not valid Unicode)", field=where)


def parse_model(model: type[M], data: Any) -> M:
    """Validate decoded JSON against ``model``, naming the first bad field."""
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_field", f"expected a JSON object, got {type_name(data)}", field="body", value=data)
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise from_validation(err.errors()) from None


def type_name(value: Any) -> str:
    """Name a JSON value's type as JSON calls it."""
    if value is None:
        return "null"
    return {bool: "true/false", int: "a number", float: "a number", str: "a string", list: "an array"}.get(
        type(value), "an object"
    )
