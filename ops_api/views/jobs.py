"""Cron job and run endpoints (contract §2)."""

from __future__ import annotations

from typing import Any

from rest_framework.response import Response
from rest_framework.views import APIView

from ops_api.auth import owner_scope
from ops_api.params import int_param
from scheduling import snapshots
from scheduling.services import job_batches
from scheduling.services import jobs as job_services
from scheduling.services import runs as run_services


def _job_body(job: Any) -> dict[str, Any]:
    return {"job": job_services.describe_jobs([job])[0]}


class JobCollection(APIView):
    def get(self, request: Any) -> Response:
        jobs = job_services.list_jobs(owner_scope(request))
        return Response({"jobs": job_services.describe_jobs(jobs)})

    def post(self, request: Any) -> Response:
        if isinstance(request.data, list):  # bulk create (contract §2)
            jobs = job_batches.create_jobs(request.data, owner_scope(request))
            return Response({"jobs": job_services.describe_new_jobs(jobs)}, status=201)
        job = job_services.create_job(request.data, owner_scope(request))
        return Response({"job": job_services.describe_new_jobs([job])[0]}, status=201)


class JobDetail(APIView):
    def get(self, request: Any, job_id: str) -> Response:
        return Response(_job_body(job_services.get_job(job_id, owner_scope(request))))

    def put(self, request: Any, job_id: str) -> Response:
        # PUT updates the fields it names, like PATCH (contract §2: V1 clients send PUT {"enabled": false}).
        job = job_services.update_job(job_id, request.data, owner_scope(request), partial=True)
        return Response(_job_body(job))

    def patch(self, request: Any, job_id: str) -> Response:
        job = job_services.update_job(job_id, request.data, owner_scope(request), partial=True)
        return Response(_job_body(job))

    def delete(self, request: Any, job_id: str) -> Response:
        deleted = job_services.delete_job(job_id, owner_scope(request))
        return Response({"status": "deleted", "job_id": deleted})


class JobRunNow(APIView):
    def post(self, request: Any, job_id: str) -> Response:
        run = run_services.queue_manual_run(job_id, owner_scope(request))
        return Response({"status": "queued", "run": snapshots.run_snapshot(run)}, status=202)


class JobRuns(APIView):
    def get(self, request: Any, job_id: str) -> Response:
        limit = int_param(request, "limit", 50, 1, 500)
        runs = run_services.list_runs(owner_scope(request), job_id, limit)
        return Response({"runs": [snapshots.run_snapshot(run) for run in runs]})


class RunCollection(APIView):
    def get(self, request: Any) -> Response:
        limit = int_param(request, "limit", 50, 1, 500)
        runs = run_services.list_runs(owner_scope(request), None, limit)
        return Response({"runs": [snapshots.run_snapshot(run) for run in runs]})


class RunDetail(APIView):
    def get(self, request: Any, run_id: str) -> Response:
        return Response({"run": snapshots.run_snapshot(run_services.get_run(run_id, owner_scope(request)))})


class RunComplete(APIView):
    def post(self, request: Any, run_id: str) -> Response:
        run = run_services.complete_run_from_callback(run_id, request.data, owner_scope(request))
        return Response({"run": snapshots.run_snapshot(run)})
