"""Text the databases cannot store: NUL (PostgreSQL text and jsonb refuse it) and lone UTF-16 surrogates
(legal as JSON escapes, not encodable as UTF-8). Input containing them is refused; output we do not
control (a target's answer) is cleaned."""

from __future__ import annotations

import re

UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> str:
    return UNSTORABLE.sub("", text)
