"""Dispatch targets (contract §2.1): validation of the `target` object and the built-in handler names."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlparse

from django.conf import settings

from scheduling.errors import InvalidInput

BUILTIN_HANDLERS = ("echo", "fail")
SLEEP_HANDLER = re.compile(r"^sleep:(\d+(?:\.\d+)?)$")
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
HEADER_BREAK = re.compile(r"[\r\n\x00]")
MASKED_SECRET = "***"


def is_known_handler(name: str) -> bool:
    return name in BUILTIN_HANDLERS or bool(SLEEP_HANDLER.match(name))


def clean_target(value: Any, previous: dict | None = None, field: str = "target") -> dict | None:
    """Validate a target; `previous` supplies the stored secret when the client echoes back `***`."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInput("target must be an object with a type of webhook or handler", field)
    kind = value.get("type")
    if kind == "handler":
        name = value.get("name")
        if not isinstance(name, str) or not is_known_handler(name):
            raise InvalidInput(
                f"unknown handler {name!r}; known: echo, fail, sleep:<seconds>", f"{field}.name"
            )
        return {"type": "handler", "name": name}
    if kind == "webhook":
        return _clean_webhook(value, previous or {}, field)
    raise InvalidInput("target.type must be 'webhook' or 'handler'", f"{field}.type")


def _clean_webhook(value: dict, previous: dict, field: str) -> dict:
    url = value.get("url")
    parsed = urlparse(url) if isinstance(url, str) else None
    if not parsed or parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InvalidInput("target.url must be an absolute http(s) URL", f"{field}.url")
    cleaned: dict[str, Any] = {"type": "webhook", "url": url}
    secret = value.get("secret")
    if secret == MASKED_SECRET:
        secret = previous.get("secret")
    if secret is not None:
        if not isinstance(secret, str) or not secret:
            raise InvalidInput("target.secret must be a non-empty string", f"{field}.secret")
        cleaned["secret"] = secret
    headers = value.get("headers")
    if headers is not None:
        if not isinstance(headers, dict) or not all(
            isinstance(k, str)
            and HEADER_NAME.fullmatch(k)
            and isinstance(v, str)
            and not HEADER_BREAK.search(v)
            for k, v in headers.items()
        ):
            # Names must be HTTP tokens and values single-line: a CR/LF would let a job smuggle headers.
            raise InvalidInput(
                "target.headers must map header names (HTTP tokens) to single-line strings",
                f"{field}.headers",
            )
        cleaned["headers"] = headers
    return cleaned


def default_target() -> dict:
    """`UA_DEFAULT_TARGET_URL` as a webhook when set, else the built-in echo handler."""
    if settings.UA_DEFAULT_TARGET_URL:
        return {"type": "webhook", "url": settings.UA_DEFAULT_TARGET_URL}
    return {"type": "handler", "name": "echo"}
