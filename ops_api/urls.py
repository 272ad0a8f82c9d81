from django.urls import include, path

from ops_api.views import calendar, calendar_actions, events, health, jobs, metrics, stasis
from ops_api.views.heartbeats import heartbeat_urlpatterns
from ops_api.views.stream import scheduling_stream

urlpatterns = [
    path("health", health.health, name="health"),
    path("cron/jobs", jobs.JobCollection.as_view(), name="cron-jobs"),
    path("cron/jobs/<str:job_id>", jobs.JobDetail.as_view(), name="cron-job"),
    path("cron/jobs/<str:job_id>/run", jobs.JobRunNow.as_view(), name="cron-job-run"),
    path("cron/jobs/<str:job_id>/runs", jobs.JobRuns.as_view(), name="cron-job-runs"),
    path("cron/runs", jobs.RunCollection.as_view(), name="cron-runs"),
    path("cron/runs/<str:run_id>", jobs.RunDetail.as_view(), name="cron-run"),
    path("cron/runs/<str:run_id>/complete", jobs.RunComplete.as_view(), name="cron-run-complete"),
    path("ops/scheduling/events", events.EventReplay.as_view(), name="scheduling-events"),
    path("ops/calendar/events", calendar.CalendarEvents.as_view(), name="calendar-events"),
    path("ops/scheduling/stream", scheduling_stream, name="scheduling-stream"),
    path("ops/notifications", stasis.NotificationList.as_view(), name="notifications"),
    path("ops/stasis", stasis.StasisQueue.as_view(), name="stasis-queue"),
    path(
        "ops/metrics/scheduling-runtime",
        metrics.SchedulingRuntimeMetrics.as_view(),
        name="metrics-scheduling-runtime",
    ),
    path("", include(heartbeat_urlpatterns)),
    # <path:...>: an event id holds a session id, which may contain "/".
    path(
        "ops/calendar/events/<path:event_id>/action",
        calendar_actions.CalendarEventAction.as_view(),
        name="calendar-event-action",
    ),
    path(
        "ops/calendar/events/<path:event_id>/change-request",
        calendar_actions.ChangeRequest.as_view(),
        name="calendar-change-request",
    ),
    path(
        "ops/calendar/events/<path:event_id>/change-request/confirm",
        calendar_actions.ChangeRequestConfirm.as_view(),
        name="calendar-change-confirm",
    ),
]
