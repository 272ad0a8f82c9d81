"""Cron job and run endpoints (contract §2)."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ops_api.auth import owner_scope
from ops_api.params import page_params
from scheduling import snapshots
from scheduling.models import CronJob
from scheduling.pages import Page
from scheduling.read_snapshot import snapshot_read
from scheduling.services import job_batches
from scheduling.services import jobs as job_services
from scheduling.services import runs as run_services


def _job_body(job: CronJob) -> dict[str, Any]:
    return {"job": job_services.describe_jobs([job])[0]}


def _runs_body(page: Page) -> dict[str, Any]:
    return {"runs": [snapshots.run_snapshot(run) for run in page.rows], "has_more": page.has_more}


class JobCollection(APIView):
    def get(self, request: Request) -> Response:
        limit, offset = page_params(request)
        with snapshot_read():  # the page, `running` and `last_run` as of one moment
            page = job_services.list_jobs(owner_scope(request), limit, offset)
            jobs = job_services.describe_jobs(page.rows)
        return Response({"jobs": jobs, "has_more": page.has_more})

    def post(self, request: Request) -> Response:
        if isinstance(request.data, list):  # bulk create (contract §2)
            jobs = job_batches.create_jobs(request.data, owner_scope(request), len(request.body))
            return Response({"jobs": job_services.describe_new_jobs(jobs)}, status=201)
        job = job_services.create_job(request.data, owner_scope(request))
        return Response({"job": job_services.describe_new_jobs([job])[0]}, status=201)


class JobDetail(APIView):
    def get(self, request: Request, job_id: str) -> Response:
        with snapshot_read():
            return Response(_job_body(job_services.get_job(job_id, owner_scope(request))))

    def put(self, request: Request, job_id: str) -> Response:
        # PUT updates the fields it names, like PATCH (contract §2: V1 clients send PUT {"enabled": false}).
        job = job_services.update_job(job_id, request.data, owner_scope(request), partial=True)
        return Response(_job_body(job))

    def patch(self, request: Request, job_id: str) -> Response:
        job = job_services.update_job(job_id, request.data, owner_scope(request), partial=True)
        return Response(_job_body(job))

    def delete(self, request: Request, job_id: str) -> Response:
        deleted = job_services.delete_job(job_id, owner_scope(request))
        return Response({"status": "deleted", "job_id": deleted})


class JobRunNow(APIView):
    def post(self, request: Request, job_id: str) -> Response:
        run = run_services.queue_manual_run(job_id, owner_scope(request))
        return Response({"status": "queued", "run": snapshots.run_snapshot(run)}, status=202)


class JobRuns(APIView):
    def get(self, request: Request, job_id: str) -> Response:
        limit, offset = page_params(request)
        with snapshot_read():
            page = run_services.list_runs(owner_scope(request), job_id, limit, offset)
        return Response(_runs_body(page))


class RunCollection(APIView):
    def get(self, request: Request) -> Response:
        limit, offset = page_params(request)
        page = run_services.list_runs(owner_scope(request), None, limit, offset)
        return Response(_runs_body(page))


class RunDetail(APIView):
    def get(self, request: Request, run_id: str) -> Response:
        run = run_services.get_run(run_id, owner_scope(request))
        # The one place the whole output travels; lists and event payloads carry output_preview.
        return Response({"run": {**snapshots.run_snapshot(run), "output": run.output}})


class RunComplete(APIView):
    def post(self, request: Request, run_id: str) -> Response:
        run = run_services.complete_run_from_callback(run_id, request.data, owner_scope(request))
        return Response({"run": snapshots.run_snapshot(run)})
