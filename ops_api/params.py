"""Query-parameter parsing with field-named 400s."""

from __future__ import annotations

from typing import Any

from scheduling.errors import InvalidInput


def int_param(request: Any, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter, clamped to [low, high]; non-integers answer 400 naming it."""
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be an integer", name) from None
    return max(low, min(high, value))
