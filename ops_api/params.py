"""Query-parameter parsing with field-named 400s."""

from __future__ import annotations

from typing import Any

from scheduling.errors import InvalidInput
from scheduling.pages import DEFAULT_LIMIT, MAX_LIMIT


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


def page_params(request: Any) -> tuple[int, int]:
    """(limit, offset) of a list endpoint: `limit` clamped to 1..5000 (default 500); `offset` a
    non-negative integer (default 0), anything else a 400 naming it (contract §2)."""
    limit = int_param(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    raw = request.query_params.get("offset")
    if raw in (None, ""):
        return limit, 0
    try:
        offset = int(raw)
    except ValueError:
        raise InvalidInput("offset must be a non-negative integer", "offset") from None
    if offset < 0:
        raise InvalidInput("offset must be a non-negative integer", "offset")
    # Past any row that can exist, and still inside the databases' 64-bit OFFSET.
    return limit, min(offset, 2**62)
