"""Bounded list reads (contract §2): every list is one page of at most `limit` rows from `offset`, and
says whether more follow. Asking for one row more than the page answers `has_more` without a COUNT."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_LIMIT = 500
MAX_LIMIT = 5000


@dataclass
class Page:
    rows: list[Any]
    has_more: bool


def page_of(queryset: Any, limit: int = DEFAULT_LIMIT, offset: int = 0) -> Page:
    """One page of an ordered queryset (the order must be total, or pages could overlap)."""
    rows = list(queryset[offset : offset + limit + 1])
    return Page(rows[:limit], len(rows) > limit)
