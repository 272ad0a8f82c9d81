"""Django admin for operators. Edits go through the same save paths as the API, so every change appends
its lifecycle event; job edits recompute the schedule through the job service."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages

from scheduling import schedule
from scheduling.errors import DomainError
from scheduling.models import (
    CronJob,
    CronRun,
    HeartbeatRun,
    HeartbeatSession,
    LifecycleEvent,
    Notification,
    StasisEntry,
)
from scheduling.services import stasis
from scheduling.services.jobs import prepare_admin_save


class CronJobForm(forms.ModelForm):
    class Meta:
        model = CronJob
        exclude = ["anchor_at", "created_at", "updated_at", "next_run_at", "last_run_at"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        try:
            schedule.parse_timezone(data.get("timezone"))
            if data.get("schedule_kind") == "cron":
                data["cron_expr"] = schedule.validate_cron(data.get("cron_expr") or "")
            if data.get("schedule_kind") == "every" and not data.get("every_seconds"):
                raise schedule.ScheduleError("every_seconds", "an interval job needs every_seconds")
            if data.get("schedule_kind") == "at" and not data.get("run_at"):
                raise schedule.ScheduleError("run_at", "a one-shot job needs run_at")
        except schedule.ScheduleError as error:
            field = error.field if error.field in self.fields else None
            self.add_error(field, error.detail)
        return data


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
    readonly_fields = ("next_run_at", "last_run_at", "created_at", "updated_at")

    def save_model(self, request: Any, obj: CronJob, form: Any, change: bool) -> None:
        prepare_admin_save(obj, form.changed_data, creating=not change)
        super().save_model(request, obj, form, change)


class ReadOnlyAdmin(admin.ModelAdmin):
    """History is written by the runtime, never edited by hand."""

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False


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
    list_filter = ("status", "reason")
    search_fields = ("run_id", "job_id", "owner_id")


@admin.register(HeartbeatSession)
class HeartbeatSessionAdmin(admin.ModelAdmin):
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


@admin.register(HeartbeatRun)
class HeartbeatRunAdmin(ReadOnlyAdmin):
    list_display = ("run_id", "session_id", "status", "reason", "scheduled_at", "started_at", "finished_at")
    list_filter = ("status", "reason")


@admin.register(StasisEntry)
class StasisEntryAdmin(ReadOnlyAdmin):
    list_display = ("event_id", "source", "source_ref", "status", "scheduled_at", "detected_at", "reason")
    list_filter = ("status", "source")
    search_fields = ("event_id", "source_ref", "owner_id")
    actions = ["approve_and_run", "reschedule_in_an_hour", "delete_missed"]

    def _apply(self, request: Any, queryset: Any, service: Any, verb: str) -> None:
        done, refused = 0, []
        for entry in queryset:
            try:
                service(entry.entry_id)
                done += 1
            except DomainError as error:
                refused.append(f"{entry.event_id}: {error.detail}")
        self.message_user(request, f"{verb} {done} entr{'y' if done == 1 else 'ies'}.")
        for line in refused:
            self.message_user(request, line, level=messages.WARNING)

    @admin.action(description="Approve & run (with the original scheduled time)")
    def approve_and_run(self, request: Any, queryset: Any) -> None:
        self._apply(request, queryset, stasis.approve_backfill_run, "Approved")

    @admin.action(description="Reschedule as a one-shot in one hour")
    def reschedule_in_an_hour(self, request: Any, queryset: Any) -> None:
        self._apply(request, queryset, stasis.reschedule, "Rescheduled")

    @admin.action(description="Delete missed run")
    def delete_missed(self, request: Any, queryset: Any) -> None:
        self._apply(request, queryset, stasis.delete_missed, "Deleted")


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("title", "kind", "source_ref", "status", "count", "updated_at")
    list_filter = ("kind", "status")


@admin.register(LifecycleEvent)
class LifecycleEventAdmin(ReadOnlyAdmin):
    list_display = ("seq", "event_type", "source", "source_ref", "owner_id", "status", "occurred_at")
    list_filter = ("event_type", "source")
    search_fields = ("source_ref", "owner_id")

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False
