"""Stasis queue and notifications (contract §7). Calendar actions on entries arrive with the calendar."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ops_api.auth import owner_scope
from ops_api.params import page_params
from scheduling import snapshots
from scheduling.errors import InvalidInput
from scheduling.models import StasisStatus
from scheduling.services import notifications, stasis


def status_param(request: Request, default: str, allowed: tuple[str, ...]) -> str | None:
    """The `status` filter: one of `allowed`, or "all" (no filter); anything else is a 400."""
    status = request.query_params.get("status", default)
    if status != "all" and status not in allowed:
        raise InvalidInput(f"status must be one of {', '.join(allowed)} or all", "status")
    return None if status == "all" else status


class NotificationList(APIView):
    def get(self, request: Request) -> Response:
        status = status_param(request, "live", ("live", "resolved"))
        limit, offset = page_params(request)
        page = notifications.list_notifications(owner_scope(request), status, limit, offset)
        rows = [snapshots.notification_snapshot(row) for row in page.rows]
        return Response({"notifications": rows, "has_more": page.has_more})


class StasisQueue(APIView):
    def get(self, request: Request) -> Response:
        status = status_param(request, "pending", tuple(StasisStatus.values))
        limit, offset = page_params(request)
        page = stasis.list_entries(owner_scope(request), status, limit, offset)
        entries = [snapshots.stasis_snapshot(entry) for entry in page.rows]
        return Response({"stasis_queue": entries, "has_more": page.has_more})
