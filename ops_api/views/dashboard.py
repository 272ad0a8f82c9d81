"""The operator dashboard at `/` (contract §9): login, the page, and the HTML partials its script swaps in.

Login is a staff user (Django auth) or the operator token, offered once as `?ops_token=` (the URL
`runtime` prints) or through the form. The token is checked, remembered only as `ops_operator` in the
session, and stripped by a redirect, so it never reaches the page, its scripts or later URLs. The API and
the push streams accept the same session (`ops_api.auth.session_is_operator`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from ops_api import dashboard_panels
from ops_api.auth import SESSION_OPERATOR_KEY, principal_for_token, session_is_operator
from ops_api.calendar_window import CalendarWindow, calendar_window, zone_or_default
from ops_api.views.health import runtime_version
from scheduling import clock

# A few zones offered first in the selector; any IANA name works through `?tz=`.
COMMON_ZONES = (
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "Australia/Sydney",
)


class StaffLoginForm(AuthenticationForm):
    def confirm_login_allowed(self, user: Any) -> None:
        super().confirm_login_allowed(user)
        if not user.is_staff:
            raise ValidationError("This account is not a staff account.", code="not_staff")


def is_operator(request: HttpRequest) -> bool:
    return settings.UA_OPS_AUTH == "off" or session_is_operator(request.session, request.user)


def dashboard(request: HttpRequest) -> HttpResponse:
    if "ops_token" in request.GET:
        return _token_login(request, request.GET["ops_token"])
    if request.method == "POST":
        return _form_login(request)
    if not is_operator(request):
        return _login_page(request, StaffLoginForm(request))
    return _page(request)


def _url_without_token(request: HttpRequest) -> str:
    kept = [(key, value) for key, value in request.GET.items() if key != "ops_token"]
    return request.path + (f"?{urlencode(kept)}" if kept else "")


def _token_login(request: HttpRequest, token: str) -> HttpResponse:
    principal = principal_for_token(token)
    if principal is not None and principal.is_operator:
        # A new session key at the privilege change (as django.contrib.auth.login does).
        request.session.cycle_key()
        request.session[SESSION_OPERATOR_KEY] = True
    else:
        messages.error(request, "That operator token is not valid.")
    # 303: the browser re-requests with GET, so neither history nor a reload repeats the token.
    return HttpResponseRedirect(_url_without_token(request), status=303)


def _form_login(request: HttpRequest) -> HttpResponse:
    token = request.POST.get("ops_token", "")
    if token:
        return _token_login(request, token)
    form = StaffLoginForm(request, data=request.POST)
    if not form.is_valid():
        return _login_page(request, form, status=200)
    login(request, form.get_user())
    return HttpResponseRedirect(_url_without_token(request), status=303)


def _login_page(request: HttpRequest, form: AuthenticationForm, status: int = 200) -> HttpResponse:
    return render(
        request, "dashboard/login.html", {"form": form, "version": runtime_version()}, status=status
    )


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    logout(request)  # flushes the session, ops_operator included
    return HttpResponseRedirect("/", status=303)


def _page(request: HttpRequest) -> HttpResponse:
    window = calendar_window(
        request.GET.get("view"), request.GET.get("start"), request.GET.get("tz"), clock.now()
    )
    _, zone = zone_or_default(window.tz_name)
    context: dict[str, Any] = {
        "window": window,
        "nav": _navigation(window),
        "zones": _zone_choices(window.tz_name),
        "config": _client_config(window),
        "version": runtime_version(),
        "push_client_enabled": settings.UA_SCHED_PUSH_CLIENT_ENABLED,
        "push_server_enabled": settings.UA_SCHED_PUSH_ENABLED,
        "hours": range(24),
    }
    for name in dashboard_panels.PANELS:
        context.update(dashboard_panels.panel_context(name, zone))
    return render(request, "dashboard/page.html", context)


def _navigation(window: CalendarWindow) -> dict[str, str]:
    def link(day: Any, view: str = window.view) -> str:
        return "/?" + urlencode({"view": view, "start": day.isoformat(), "tz": window.tz_name})

    return {
        "prev": link(window.neighbour(-1)),
        "next": link(window.neighbour(1)),
        "today": link(window.today),
        "week": link(window.first_day, "week"),
        "day": link(window.today if window.view == "week" else window.first_day, "day"),
    }


def _zone_choices(current: str) -> list[str]:
    return list(COMMON_ZONES) if current in COMMON_ZONES else [current, *COMMON_ZONES]


def _client_config(window: CalendarWindow) -> dict[str, Any]:
    """Everything the script needs, rendered into the page as JSON (never the token)."""
    return {
        "view": window.view,
        "tz": window.tz_name,
        "first_day": window.first_day.isoformat(),
        "days": window.days,
        "today": window.today.isoformat(),
        "start_epoch": window.start_utc.timestamp(),
        "end_epoch": window.end_utc.timestamp(),
        "shifts": [shift.__dict__ for shift in window.shifts],
        "push_server_enabled": settings.UA_SCHED_PUSH_ENABLED,
        "push_client_enabled": settings.UA_SCHED_PUSH_CLIENT_ENABLED,
        "calendar_poll_seconds": settings.UA_DASHBOARD_CALENDAR_POLL_SECONDS,
        "heartbeat_poll_seconds": settings.UA_DASHBOARD_HEARTBEAT_POLL_SECONDS,
    }


@require_GET
def panel(request: HttpRequest, name: str) -> HttpResponse:
    """One panel's partial, for the script to swap in after a change, a poll or a refresh."""
    if not is_operator(request):
        return HttpResponse("login required", status=403, content_type="text/plain")
    if name not in dashboard_panels.PANELS:
        raise Http404(name)
    _, zone = zone_or_default(request.GET.get("tz"))
    context = dashboard_panels.panel_context(name, zone)
    return render(request, f"dashboard/panels/{name}.html", context)


@require_GET
def job_runs(request: HttpRequest, job_id: str) -> HttpResponse:
    if not is_operator(request):
        return HttpResponse("login required", status=403, content_type="text/plain")
    _, zone = zone_or_default(request.GET.get("tz"))
    return render(request, "dashboard/job_runs.html", dashboard_panels.job_runs_panel(job_id, zone))
