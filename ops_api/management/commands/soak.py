"""`manage.py soak`: prove a running deployment healthy over time, from the outside (HTTP only).

Every `--interval-seconds` for `--duration-seconds` it runs one cycle of checks (ops_api/soak.py), prints a
progress line, and rewrites the status JSON at `--out-json`. At the end it prints per-endpoint latency
percentiles. The exit status is 0 if and only if every check passed. `--create-load N` adds N
short-interval jobs for the length of the soak and deletes them afterwards.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ops_api.soak import Soak
from scheduling import clock


class Command(BaseCommand):
    help = "Soak a running runtime over HTTP: health, metrics, calendar, replay and stream checks."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument("--duration-seconds", type=float, default=60.0)
        parser.add_argument("--interval-seconds", type=float, default=5.0)
        parser.add_argument("--timeout-seconds", type=float, default=10.0, help="per request")
        parser.add_argument("--ops-token", default=os.environ.get("UA_OPS_TOKEN", ""))
        parser.add_argument("--out-json", default="", help="status file, rewritten every cycle")
        parser.add_argument("--create-load", type=int, default=0, metavar="N", help="add N interval jobs")
        parser.add_argument("--load-every", default="60s", help="interval of the load jobs (default 60s)")
        parser.add_argument("--max-projection-lag", type=int, default=1000, help="events (3 cycles in a row)")

    def handle(self, *args: Any, **options: Any) -> None:
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one progress line per cycle, not per request
        headers = {"Authorization": f"Bearer {options['ops_token']}"} if options["ops_token"] else {}
        with httpx.Client(base_url=options["base_url"].rstrip("/"), headers=headers) as client:
            soak = Soak(client, options["timeout_seconds"], options["max_projection_lag"])
            load = self._create_load(client, options) if options["create_load"] else []
            try:
                self._run(soak, options)
            finally:
                self._remove_load(client, load, soak)
            summary = self._finish(soak, options)
        if not summary["all_checks_ok"]:
            sys.exit(1)

    def _run(self, soak: Soak, options: dict[str, Any]) -> None:
        deadline = time.monotonic() + options["duration_seconds"]
        cycle = 0
        while True:
            cycle += 1
            self.cycles = cycle
            started = time.monotonic()
            probes = soak.cycle()
            failed = [f"{p.name}={p.status or 'ERR'}" for p in probes if not p.ok]
            summary = soak.summary()
            line = (
                f"cycle {cycle} {clock.iso(clock.now())} checks={summary['total_checks']} "
                f"fail={summary['total_fail']} seq={summary['last_seq']} "
                f"version={summary['projection_version']} "
                + " ".join(f"{p.name}={p.seconds * 1000:.0f}ms" for p in probes)
                + (f" FAILED: {', '.join(failed)}" if failed else "")
            )
            self.stdout.write(line)
            self._write_status(options["out_json"], soak, cycle, running=True)
            if time.monotonic() + options["interval_seconds"] > deadline:
                return
            time.sleep(max(0.0, options["interval_seconds"] - (time.monotonic() - started)))

    def _create_load(self, client: httpx.Client, options: dict[str, Any]) -> list[str]:
        jobs = [
            {
                "command": f"soak load {i}",
                "every": options["load_every"],
                "title": f"soak load {i}",
                "priority": "low",
                "metadata": {"soak": True},
            }
            for i in range(options["create_load"])
        ]
        response = client.post("/api/v1/cron/jobs", json=jobs, timeout=60)
        if response.status_code != 201:
            raise CommandError(
                f"could not create the load jobs: HTTP {response.status_code} {response.text[:300]}"
            )
        job_ids = [job["job_id"] for job in response.json()["jobs"]]
        self.stdout.write(f"created {len(job_ids)} load jobs every {options['load_every']}")
        return job_ids

    def _remove_load(self, client: httpx.Client, job_ids: list[str], soak: Soak) -> None:
        removed = 0
        for job_id in job_ids:
            try:
                removed += client.delete(f"/api/v1/cron/jobs/{job_id}", timeout=30).status_code == 200
            except httpx.HTTPError:
                pass
        if job_ids:
            soak.record(
                "load_removed", removed == len(job_ids), f"removed {removed} of {len(job_ids)} load jobs"
            )
            self.stdout.write(f"removed {removed} of {len(job_ids)} load jobs")

    def _write_status(self, path: str, soak: Soak, cycles: int, running: bool) -> None:
        if not path:
            return
        status = {
            "running": running,
            "cycles": cycles,
            "updated_at": clock.iso(clock.now()),
            "summary": soak.summary(),
        }
        target = Path(path)
        partial = target.with_suffix(target.suffix + ".tmp")
        partial.write_text(json.dumps(status, indent=2))
        partial.replace(target)  # atomic: a reader never sees half a file

    def _finish(self, soak: Soak, options: dict[str, Any]) -> dict[str, Any]:
        summary = soak.summary()
        self._write_status(options["out_json"], soak, getattr(self, "cycles", 0), running=False)
        self.stdout.write("")
        self.stdout.write(f"{'endpoint':<16} {'count':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
        for name, row in summary["latency"].items():
            p50, p95, p99 = row["p50_ms"], row["p95_ms"], row["p99_ms"]
            self.stdout.write(f"{name:<16} {row['count']:>6} {p50:>8.1f} {p95:>8.1f} {p99:>8.1f}")
        for failure in summary["failures"]:
            self.stdout.write(f"FAIL {failure}")
        verdict = "all checks passed" if summary["all_checks_ok"] else "CHECKS FAILED"
        self.stdout.write(f"{verdict}: {summary['total_checks']} checks, {summary['total_fail']} failed")
        return summary
