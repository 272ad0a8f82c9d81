"""Django admin for operators: what the dashboard does not cover. Every write goes through the same
service as the API (same validation, schedule computation and events); history is read-only."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import URLPattern

from scheduling import clock
from scheduling.admin_input import job_api_data, job_form_field, session_api_data, session_form_field
from scheduling.errors import DomainError, InvalidInput
from scheduling.job_input import clean_job_input
from scheduling.models import (
    CronJob,
    CronRun,
    HeartbeatRun,
    HeartbeatSession,
    LifecycleEvent,
    Notification,
    StasisEntry,
)
from scheduling.services import heartbeats, runs, stasis
from scheduling.services import jobs as job_services


def apply_each(
    modeladmin: admin.ModelAdmin, request: HttpRequest, items: Iterable[Any], service: Callable, verb: str
) -> None:
    """Call `service` per selected row; a refusal (DomainError) is reported and the rest still run."""
    done, refused = 0, []
    for item in items:
        try:
            service(item)
            done += 1
        except DomainError as error:
            refused.append(f"{item}: {error.detail}")
    modeladmin.message_user(request, f"{verb} {done} of {done + len(refused)} selected.")
    for line in refused:
        modeladmin.message_user(request, line, level=messages.WARNING)


def copy_row(source: Any, target: Any) -> None:
    """Show the admin the row the service wrote (its redirect and log entry use this object)."""
    for field in type(source)._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
    target._state.adding = False


class ServiceForm(forms.ModelForm):
    """A model form whose clean() validates exactly as the API does, through `validate`."""

    def api_data(self) -> dict[str, Any]:
        raise NotImplementedError

    def validate(self, data: dict[str, Any]) -> None:
        raise NotImplementedError

    def form_field(self, api_field: str | None) -> str | None:
        raise NotImplementedError

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        self.service_data = self.api_data()
        try:
            self.validate(self.service_data)
        except InvalidInput as error:
            self.add_error(self.form_field(error.field), error.detail)
        return cleaned


class CronJobForm(ServiceForm):
    class Meta:
        model = CronJob
        # schedule_kind is derived from which schedule field is set (run_at > cron_expr > every), as the
        # API derives it; bookkeeping is the service's.
        exclude = ["schedule_kind", "anchor_at", "created_at", "updated_at", "next_run_at", "last_run_at"]
        exclude += ["parked_reason"]

    def api_data(self) -> dict[str, Any]:
        return job_api_data(self.cleaned_data, self.changed_data, creating=self.instance._state.adding)

    def validate(self, data: dict[str, Any]) -> None:
        adding = self.instance._state.adding
        clean_job_input(data, existing=None if adding else self.instance, partial=not adding, now=clock.now())

    def form_field(self, api_field: str | None) -> str | None:
        name = job_form_field(api_field)
        return name if name in self.fields else None


class ReadOnlyAdmin(admin.ModelAdmin):
    """History is written by the runtime, never added, edited or deleted by hand (deleting a running
    run would leave a `started` event without its terminal event)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        # No add page at all: the admin would answer it with 403 and log a traceback.
        return [url for url in super().get_urls() if not url.pattern.describe().startswith("'add/'")]


@admin.register(CronJob)
class CronJobAdmin(admin.ModelAdmin):
    form = CronJobForm
    list_display = (
        "job_id",
        "title",
        "owner_id",
        "schedule_kind",
        "cron_expr",
        "every_seconds",
        "enabled",
        "next_run_at",
        "last_run_at",
    )
    list_filter = ("enabled", "schedule_kind", "priority", "missed_policy")
    search_fields = ("job_id", "title", "command", "owner_id", "session_id")
    readonly_fields = (
        "schedule_kind",
        "next_run_at",
        "last_run_at",
        "parked_reason",
        "created_at",
        "updated_at",
    )
    actions = ["run_now", "pause", "resume"]

    def save_model(self, request: HttpRequest, obj: CronJob, form: Any, change: bool) -> None:
        if change:
            job = job_services.update_job(obj.job_id, form.service_data, None, partial=True)
        else:
            job = job_services.create_job(form.service_data, None)
        copy_row(job, obj)

    def delete_model(self, request: HttpRequest, obj: CronJob) -> None:
        job_services.delete_job(obj.job_id, None)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for job_id in queryset.values_list("job_id", flat=True):
            job_services.delete_job(job_id, None)

    @admin.action(description="Run now")
    def run_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        apply_each(self, request, queryset, lambda job: runs.queue_manual_run(job.job_id, None), "Queued")

    @admin.action(description="Pause (disable)")
    def pause(self, request: HttpRequest, queryset: QuerySet) -> None:
        apply_each(self, request, queryset, lambda job: _set_enabled(job, False), "Paused")

    @admin.action(description="Resume (enable)")
    def resume(self, request: HttpRequest, queryset: QuerySet) -> None:
        apply_each(self, request, queryset, lambda job: _set_enabled(job, True), "Resumed")


def _set_enabled(job: CronJob, enabled: bool) -> None:
    job_services.update_job(job.job_id, {"enabled": enabled}, None, partial=True)


class HeartbeatSessionForm(ServiceForm):
    class Meta:
        model = HeartbeatSession
        fields = [
            "session_id", "owner_id", "every_seconds", "active_hours", "timezone", "enabled", "busy",
            "channel", "target", "delivery", "visibility",
        ]  # fmt: skip

    def api_data(self) -> dict[str, Any]:
        return session_api_data(self.cleaned_data, self.changed_data, creating=self.instance._state.adding)

    def validate(self, data: dict[str, Any]) -> None:
        heartbeats.validate_session_input(data, None if self.instance._state.adding else self.instance)

    def form_field(self, api_field: str | None) -> str | None:
        name = session_form_field(api_field)
        return name if name in self.fields else None


@admin.register(HeartbeatSession)
class HeartbeatSessionAdmin(admin.ModelAdmin):
    form = HeartbeatSessionForm
    list_display = (
        "session_id",
        "owner_id",
        "every_seconds",
        "active_hours",
        "enabled",
        "busy",
        "next_due_at",
        "last_run_at",
    )
    list_filter = ("enabled", "busy")
    search_fields = ("session_id", "owner_id")
    readonly_fields = ("next_due_at", "last_run_at", "last_summary", "created_at", "updated_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        fields = tuple(super().get_readonly_fields(request, obj))
        return (*fields, "session_id") if obj is not None else fields

    def save_model(self, request: HttpRequest, obj: HeartbeatSession, form: Any, change: bool) -> None:
        session = heartbeats.upsert_session(obj.session_id, form.service_data, None)
        if "busy" in form.changed_data:
            session = heartbeats.set_busy(obj.session_id, form.cleaned_data["busy"], None)
        copy_row(session, obj)

    def delete_model(self, request: HttpRequest, obj: HeartbeatSession) -> None:
        heartbeats.delete_session(obj.session_id, None)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for session_id in queryset.values_list("session_id", flat=True):
            heartbeats.delete_session(session_id, None)


class JobFilter(admin.SimpleListFilter):
    """Runs of one job (runs keep their job id after the job is deleted; the query works for those too)."""

    title = "job"
    parameter_name = "job_id"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        jobs = CronJob.objects.order_by("created_at").values_list("job_id", "title")[:200]
        return [(job_id, title or job_id) for job_id, title in jobs]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(job_id=self.value()) if self.value() else queryset


@admin.register(CronRun)
class CronRunAdmin(ReadOnlyAdmin):
    list_display = (
        "run_id",
        "job_id",
        "job_title",
        "status",
        "reason",
        "scheduled_at",
        "started_at",
        "finished_at",
    )
    list_filter = ("status", JobFilter, "reason")
    search_fields = ("run_id", "job_id", "owner_id")


@admin.register(HeartbeatRun)
class HeartbeatRunAdmin(ReadOnlyAdmin):
    list_display = ("run_id", "session_id", "status", "reason", "scheduled_at", "started_at", "finished_at")
    list_filter = ("status", "reason")


class RescheduleForm(forms.Form):
    run_at = forms.CharField(
        help_text="ISO-8601, epoch seconds, '20m', 'tomorrow 9:15am'… (naive times in the job's zone)"
    )
    timezone = forms.CharField(required=False, help_text="IANA zone for a naive time; default the job's")


@admin.register(StasisEntry)
class StasisEntryAdmin(ReadOnlyAdmin):
    list_display = ("event_id", "source", "source_ref", "status", "scheduled_at", "detected_at", "reason")
    list_filter = ("status", "source")
    search_fields = ("event_id", "source_ref", "owner_id")
    actions = ["approve_and_run", "reschedule", "delete_missed"]

    @admin.action(description="Approve & run (with the original scheduled time)")
    def approve_and_run(self, request: HttpRequest, queryset: QuerySet) -> None:
        apply_each(self, request, queryset, lambda e: stasis.approve_backfill_run(e.entry_id), "Approved")

    @admin.action(description="Reschedule as a one-shot at a time…")
    def reschedule(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        form = RescheduleForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            run_at, tz = form.cleaned_data["run_at"], form.cleaned_data["timezone"] or None
            apply_each(
                self, request, queryset, lambda e: stasis.reschedule(e.entry_id, run_at, tz), "Rescheduled"
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Reschedule missed runs",
            "form": form,
            "entries": queryset,
            "opts": self.model._meta,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/scheduling/reschedule.html", context)

    @admin.action(description="Delete missed run")
    def delete_missed(self, request: HttpRequest, queryset: QuerySet) -> None:
        apply_each(self, request, queryset, lambda e: stasis.delete_missed(e.entry_id), "Deleted")


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("title", "kind", "source_ref", "status", "count", "updated_at")
    list_filter = ("kind", "status")


@admin.register(LifecycleEvent)
class LifecycleEventAdmin(ReadOnlyAdmin):
    list_display = ("seq", "event_type", "source", "source_ref", "owner_id", "status", "occurred_at")
    list_filter = ("event_type", "source")
    search_fields = ("source_ref", "owner_id")
