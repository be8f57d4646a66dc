"""Read request bodies ourselves, so every refusal names the field and nothing half-parses.

Routes that need the raw bytes (a signature over them) or a field path with a batch index
read the body here rather than through FastAPI's model binding; the OpenAPI document still
shows their schema (see ``app.body_schemas``).
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from monitor.api.errors import ApiError, from_validation

M = TypeVar("M", bound=BaseModel)


def parse_json(raw: bytes) -> Any:
    """Decode a JSON body, or refuse it as ``invalid_json`` saying where it broke."""
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_json", "the body is not UTF-8 JSON", field="body") from None
    except json.JSONDecodeError as err:
        where = f"line {err.lineno} column {err.colno}"
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {err.msg} at {where}", field="body") from None


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
