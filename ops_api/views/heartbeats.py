"""Heartbeat session, wake and system event endpoints (contract §3)."""

from __future__ import annotations

from typing import Any

from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from ops_api.auth import owner_scope
from ops_api.params import int_param
from scheduling import metrics, snapshots
from scheduling.errors import InvalidInput
from scheduling.services import heartbeats as heartbeat_services


def _body(request: Any) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise InvalidInput("the request body must be a JSON object", None)
    return request.data


def _session_body(session: Any) -> dict[str, Any]:
    return {"session": snapshots.session_snapshot(session)}


class SessionCollection(APIView):
    def get(self, request: Any) -> Response:
        sessions = heartbeat_services.list_sessions(owner_scope(request))
        return Response({"sessions": [snapshots.session_snapshot(session) for session in sessions]})

    def post(self, request: Any) -> Response:
        session = heartbeat_services.create_session(_body(request), owner_scope(request))
        return Response(_session_body(session), status=201)


class SessionDetail(APIView):
    def get(self, request: Any, session_id: str) -> Response:
        return Response(_session_body(heartbeat_services.get_session(session_id, owner_scope(request))))

    def put(self, request: Any, session_id: str) -> Response:
        session = heartbeat_services.upsert_session(session_id, _body(request), owner_scope(request))
        return Response(_session_body(session))

    def delete(self, request: Any, session_id: str) -> Response:
        deleted = heartbeat_services.delete_session(session_id, owner_scope(request))
        return Response({"status": "deleted", "session_id": deleted})


class SessionBusy(APIView):
    def post(self, request: Any, session_id: str) -> Response:
        busy = _body(request).get("busy")
        session = heartbeat_services.set_busy(session_id, busy, owner_scope(request))
        return Response(_session_body(session))


class Wake(APIView):
    def post(self, request: Any) -> Response:
        metrics.count("heartbeat_wake_requests")
        data = _body(request)
        mode = data.get("mode")
        session_ids = heartbeat_services.request_wake(
            data.get("session_id"), mode, data.get("reason"), owner_scope(request)
        )
        return Response({"status": "queued", "mode": mode, "session_ids": session_ids})


class LastHeartbeat(APIView):
    def get(self, request: Any) -> Response:
        metrics.count("heartbeat_last_requests")
        session_id = request.query_params.get("session_id")
        if not session_id:
            raise InvalidInput("session_id is required", "session_id")
        return Response(heartbeat_services.last_heartbeat(session_id, owner_scope(request)))


class SystemEventCreate(APIView):
    def post(self, request: Any) -> Response:
        data = _body(request)
        event = heartbeat_services.add_system_event(
            data.get("session_id"), heartbeat_services.system_event_text(data), owner_scope(request)
        )
        return Response({"event": snapshots.system_event_snapshot(event)}, status=201)


class SystemEventCollection(APIView):
    def get(self, request: Any) -> Response:
        limit = int_param(request, "limit", 50, 1, 500)
        session_id = request.query_params.get("session_id") or None
        events = heartbeat_services.list_system_events(session_id, owner_scope(request), limit)
        return Response({"events": [snapshots.system_event_snapshot(event) for event in events]})


heartbeat_urlpatterns = [
    path("heartbeat/sessions", SessionCollection.as_view(), name="heartbeat-sessions"),
    path("heartbeat/sessions/<str:session_id>", SessionDetail.as_view(), name="heartbeat-session"),
    path("heartbeat/sessions/<str:session_id>/busy", SessionBusy.as_view(), name="heartbeat-session-busy"),
    path("heartbeat/wake", Wake.as_view(), name="heartbeat-wake"),
    path("heartbeat/last", LastHeartbeat.as_view(), name="heartbeat-last"),
    path("system/event", SystemEventCreate.as_view(), name="system-event"),
    path("system/events", SystemEventCollection.as_view(), name="system-events"),
]
