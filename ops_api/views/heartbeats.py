"""Heartbeat session, wake and system event endpoints (contract §3)."""

from __future__ import annotations

from typing import Any

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ops_api.auth import owner_scope
from ops_api.params import page_params
from scheduling import metrics, snapshots
from scheduling.errors import InvalidInput
from scheduling.models import HeartbeatSession
from scheduling.read_snapshot import snapshot_read
from scheduling.services import heartbeats as heartbeat_services


def _body(request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise InvalidInput("the request body must be a JSON object", None)
    return request.data


def _session_body(session: HeartbeatSession) -> dict[str, Any]:
    return {"session": snapshots.session_snapshot(session)}


class SessionCollection(APIView):
    def get(self, request: Request) -> Response:
        limit, offset = page_params(request)
        page = heartbeat_services.list_sessions(owner_scope(request), limit, offset)
        sessions = [snapshots.session_snapshot(session) for session in page.rows]
        return Response({"sessions": sessions, "has_more": page.has_more})

    def post(self, request: Request) -> Response:
        session = heartbeat_services.create_session(_body(request), owner_scope(request))
        return Response(_session_body(session), status=201)


class SessionDetail(APIView):
    def get(self, request: Request, session_id: str) -> Response:
        return Response(_session_body(heartbeat_services.get_session(session_id, owner_scope(request))))

    def put(self, request: Request, session_id: str) -> Response:
        session = heartbeat_services.upsert_session(session_id, _body(request), owner_scope(request))
        return Response(_session_body(session))

    def delete(self, request: Request, session_id: str) -> Response:
        deleted = heartbeat_services.delete_session(session_id, owner_scope(request))
        return Response({"status": "deleted", "session_id": deleted})


class SessionBusy(APIView):
    def post(self, request: Request, session_id: str) -> Response:
        busy = _body(request).get("busy")
        session = heartbeat_services.set_busy(session_id, busy, owner_scope(request))
        return Response(_session_body(session))


class Wake(APIView):
    def post(self, request: Request) -> Response:
        metrics.count("heartbeat_wake_requests")
        data = _body(request)
        mode = data.get("mode")
        session_ids = heartbeat_services.request_wake(
            data.get("session_id"), mode, data.get("reason"), owner_scope(request)
        )
        return Response({"status": "queued", "mode": mode, "session_ids": session_ids})


class LastHeartbeat(APIView):
    def get(self, request: Request) -> Response:
        metrics.count("heartbeat_last_requests")
        session_id = request.query_params.get("session_id")
        if not session_id:
            raise InvalidInput("session_id is required", "session_id")
        return Response(heartbeat_services.last_heartbeat(session_id, owner_scope(request)))


class SystemEventCreate(APIView):
    def post(self, request: Request) -> Response:
        data = _body(request)
        event = heartbeat_services.add_system_event(
            data.get("session_id"), heartbeat_services.system_event_text(data), owner_scope(request)
        )
        return Response({"event": snapshots.system_event_snapshot(event)}, status=201)


class SystemEventCollection(APIView):
    def get(self, request: Request) -> Response:
        limit, offset = page_params(request)
        session_id = request.query_params.get("session_id") or None
        with snapshot_read():
            page = heartbeat_services.list_system_events(session_id, owner_scope(request), limit, offset)
        events = [snapshots.system_event_snapshot(event) for event in page.rows]
        return Response({"events": events, "has_more": page.has_more})


heartbeat_urlpatterns = [
    path("heartbeat/sessions", SessionCollection.as_view(), name="heartbeat-sessions"),
    path("heartbeat/sessions/<str:session_id>", SessionDetail.as_view(), name="heartbeat-session"),
    path("heartbeat/sessions/<str:session_id>/busy", SessionBusy.as_view(), name="heartbeat-session-busy"),
    path("heartbeat/wake", Wake.as_view(), name="heartbeat-wake"),
    path("heartbeat/last", LastHeartbeat.as_view(), name="heartbeat-last"),
    path("system/event", SystemEventCreate.as_view(), name="system-event"),
    path("system/events", SystemEventCollection.as_view(), name="system-events"),
]
