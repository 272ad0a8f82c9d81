"""The landing page `manage.py runtime` points operators at: status at a glance and where to go. The
`?ops_token=` it is opened with is checked and remembered in the session for the dashboard to come."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from ops_api.auth import principal_for_token
from ops_api.views.health import runtime_version
from scheduling import event_log, presence
from scheduling.models import CronJob, StasisEntry, StasisStatus

SESSION_KEY = "ops_token_ok"


def home(request: HttpRequest) -> HttpResponse:
    token_state = ""
    offered = request.GET.get("ops_token")
    if offered is not None:
        principal = principal_for_token(offered)
        valid = principal is not None and principal.is_operator
        request.session[SESSION_KEY] = valid
        token_state = "accepted" if valid else "rejected"
    context = {
        "version": runtime_version(),
        "token_state": token_state,
        "scheduler": presence.status_of("scheduler"),
        "jobs": CronJob.objects.count(),
        "enabled_jobs": CronJob.objects.filter(enabled=True).count(),
        "pending_stasis": StasisEntry.objects.filter(status=StasisStatus.PENDING).count(),
        "last_seq": event_log.bounds().last_seq,
    }
    return render(request, "home.html", context)
