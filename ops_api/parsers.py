"""JSON parsing that refuses what the database would refuse: PostgreSQL text and jsonb cannot hold NUL
characters, and no database can store a lone UTF-16 surrogate (`\\ud800`, legal in JSON escapes but not
encodable as UTF-8). Either, anywhere in a body, is a 400 naming its field, not a 500 at INSERT time."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from scheduling.errors import InvalidInput
from scheduling.storable_text import UNSTORABLE


def find_unstorable(value: Any, path: str = "") -> str | None:
    """The dotted path of the first string (or key) holding a NUL or a lone surrogate, else None."""
    if isinstance(value, str):
        return (path or "body") if UNSTORABLE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if UNSTORABLE.search(str(key)):
                return here
            found = find_unstorable(item, here)
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            # A top-level array is a bulk create, whose items are named `<index>.<field>` (contract §2).
            found = find_unstorable(item, f"{path}[{index}]" if path else str(index))
            if found:
                return found
    return None


class StrictJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            # json.loads recurses per nesting level; DRF only turns ValueError into a 400.
            raise ParseError("JSON parse error - nested too deeply") from None
        field = find_unstorable(data)
        if field:
            raise InvalidInput("text may not contain NUL characters or lone surrogates", field)
        return data
