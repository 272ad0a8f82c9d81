"""Token auth (contract §1): the operator token sees everything; an owner token sees only its owner's
rows (others answer 404 as if absent). Auth is never silently off: only UA_OPS_AUTH=off disables it."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from django.conf import settings
from django.http import QueryDict
from django.http.cookie import parse_cookie
from django.middleware.csrf import CsrfViewMiddleware
from rest_framework import authentication, exceptions, permissions

from ops_api.models import OwnerApiToken, token_digest


@dataclass(frozen=True)
class Principal:
    """Who is calling. `owner_id` None means the operator (no owner scoping)."""

    kind: str
    owner_id: str | None = None
    is_authenticated: bool = True

    @property
    def is_operator(self) -> bool:
        return self.owner_id is None


OPERATOR = Principal(kind="operator")

# Set in the Django session when a browser logs in to the dashboard with the operator token (contract §9).
SESSION_OPERATOR_KEY = "ops_operator"


def session_is_operator(session: Any, user: Any) -> bool:
    """A dashboard login (the operator token, or a staff user) makes the browser session an operator for
    the API and the push streams too (contract §1). The WebSocket and SSE helpers call this as well."""
    if session is not None and session.get(SESSION_OPERATOR_KEY) is True:
        return True
    return bool(
        getattr(user, "is_authenticated", False)
        and getattr(user, "is_active", False)
        and getattr(user, "is_staff", False)
    )


def principal_for_token(token: str | None) -> Principal | None:
    """Resolve a presented token; None when it is missing or unknown."""
    if settings.UA_OPS_AUTH == "off":
        return OPERATOR
    if not token:
        return None
    expected = settings.UA_OPS_TOKEN
    if expected and hmac.compare_digest(token.encode(), expected.encode()):
        return OPERATOR
    row = OwnerApiToken.objects.filter(digest=token_digest(token), revoked_at__isnull=True).first()
    return Principal(kind="owner", owner_id=row.owner_id) if row else None


def token_from_headers(headers: Any) -> str | None:
    authorization = headers.get("Authorization", "")
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return headers.get("X-UA-OPS-TOKEN") or None


class TokenAuthentication(authentication.BaseAuthentication):
    """Bearer / X-UA-OPS-TOKEN; views with `accepts_query_token = True` (the push endpoints) also take
    `?ops_token=`, because browsers cannot set headers on EventSource or WebSocket."""

    def authenticate(self, request: Any) -> tuple[Principal, None] | None:
        token = token_from_headers(request.headers)
        view = request.parser_context.get("view") if request.parser_context else None
        if not token and getattr(view, "accepts_query_token", False):
            token = request.query_params.get("ops_token")
        if settings.UA_OPS_AUTH != "off" and not token:
            return self._authenticate_session(request)
        principal = principal_for_token(token)
        if principal is None:
            raise exceptions.AuthenticationFailed("invalid token")
        return principal, None

    @staticmethod
    def _authenticate_session(request: Any) -> tuple[Principal, None] | None:
        django_request = request._request
        session = getattr(django_request, "session", None)
        if not session_is_operator(session, getattr(django_request, "user", None)):
            return None
        # A cookie rides along on requests other sites make, so unsafe methods need Django's CSRF token
        # (as DRF's SessionAuthentication.enforce_csrf); token-authenticated calls carry no cookie risk.
        _enforce_csrf(django_request)
        return OPERATOR, None

    def authenticate_header(self, request: Any) -> str:
        # Present so DRF answers 401 (with WWW-Authenticate) rather than 403 for a missing token.
        return 'Bearer realm="scheduling-runtime"'


class _CsrfCheck(CsrfViewMiddleware):
    def _reject(self, request: Any, reason: str) -> Any:
        return reason  # returned instead of a response, so the caller can raise a DRF error


def _enforce_csrf(django_request: Any) -> None:
    check = _CsrfCheck(lambda request: None)  # type: ignore[arg-type]
    check.process_request(django_request)
    reason = check.process_view(django_request, None, (), {})  # type: ignore[arg-type]
    if reason:
        raise exceptions.PermissionDenied(f"CSRF failed: {reason}")


class HasValidToken(permissions.BasePermission):
    def has_permission(self, request: Any, view: Any) -> bool:
        return isinstance(request.user, Principal)


def owner_scope(request: Any) -> str | None:
    """The owner id a request is confined to (None for the operator)."""
    return request.user.owner_id


# --- push endpoints (SSE, WebSocket): the token, or a browser session --------------------------------

def principal_for_scope(scope: dict[str, Any]) -> Principal | None:
    """Who an ASGI connection (WebSocket, or the HTTP scope of the SSE view) speaks for: a token
    (`?ops_token=`, `Authorization: Bearer`, `X-UA-OPS-TOKEN`) first; without one, the Django session of
    its cookie, which is an operator if it holds the dashboard's token login or a staff user. A token that
    is present but wrong is refused even if the session is good. Reads the database: call it in a thread."""
    headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
    token = token_from_headers(_HeaderLookup(headers))
    if not token:
        token = QueryDict(scope.get("query_string", b"").decode("latin-1")).get("ops_token") or None
    if token or settings.UA_OPS_AUTH == "off":
        return principal_for_token(token)
    session = scope.get("session") or _session_from_cookie(headers.get("cookie", ""))
    return session_principal(session) if session is not None else None


def session_principal(session: Any) -> Principal | None:
    """The operator if this Django session holds the dashboard's token login or an active staff user."""
    if session.get(SESSION_OPERATOR_KEY) is True:
        return OPERATOR
    from django.contrib.auth import get_user

    user = get_user(_SessionHolder(session))  # type: ignore[arg-type]  # get_user reads only .session
    if user.is_authenticated and user.is_active and user.is_staff:
        return OPERATOR
    return None


def _session_from_cookie(cookie_header: str) -> Any:
    key = parse_cookie(cookie_header).get(settings.SESSION_COOKIE_NAME)
    if not key:
        return None
    return import_module(settings.SESSION_ENGINE).SessionStore(key)


class _HeaderLookup:
    """`token_from_headers` asks for canonical names; ASGI header names are lower-case."""

    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers

    def get(self, name: str, default: Any = None) -> Any:
        return self.headers.get(name.lower(), default)


@dataclass
class _SessionHolder:
    """What `django.contrib.auth.get_user` needs of a request."""

    session: Any
