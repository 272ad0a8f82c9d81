"""Calendar actions and change requests over HTTP (contract §7). The notifications' action links point
here. The domain logic lives in `scheduling.services.calendar_actions` and `change_requests`."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ops_api.auth import owner_scope
from scheduling import metrics, snapshots
from scheduling.services import calendar_actions, change_requests
from scheduling.services.calendar_actions import ActionResult
from scheduling.services.jobs import describe_jobs


def result_body(result: ActionResult) -> dict[str, Any]:
    """`{"status": "ok", "action", "event_id"}` plus whichever of entry/job/run/session the action
    touched."""
    body: dict[str, Any] = {"status": "ok", "action": result.action, "event_id": result.event_id}
    if result.entry is not None:
        body["entry"] = snapshots.stasis_snapshot(result.entry)
    if result.job is not None:
        body["job"] = describe_jobs([result.job])[0]
    if result.run is not None:
        body["run"] = snapshots.run_snapshot(result.run)
    if result.session is not None:
        body["session"] = snapshots.session_snapshot(result.session)
    return body


class CalendarEventAction(APIView):
    def post(self, request: Request, event_id: str) -> Response:
        metrics.count("calendar_action_requests")
        result = calendar_actions.perform_action(event_id, request.data, owner_scope(request))
        return Response(result_body(result))


class ChangeRequest(APIView):
    def post(self, request: Request, event_id: str) -> Response:
        metrics.count("calendar_change_request_requests")
        proposal = change_requests.propose_change(event_id, request.data, owner_scope(request))
        # 200 as in V1 (the contract names no 201 here, unlike the create endpoints that have one).
        return Response({"proposal": snapshots.proposal_snapshot(proposal)})


class ChangeRequestConfirm(APIView):
    def post(self, request: Request, event_id: str) -> Response:
        metrics.count("calendar_change_confirm_requests")
        proposal, result = change_requests.confirm_change(event_id, request.data, owner_scope(request))
        body = result_body(result)
        body.update(action=proposal.action or result.action, proposal=snapshots.proposal_snapshot(proposal))
        return Response(body)
