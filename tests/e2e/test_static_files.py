"""The admin is styled: static files answer 200 over a real socket under `manage.py runtime` and under
`config.asgi:application` served by Daphne, with no collectstatic step (contract §9)."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from tests.processes import ROOT, child_env, free_port, manage, stop, wait_for

ADMIN_CSS = "/static/admin/css/base.css"


def _css(base: str) -> httpx.Response | None:
    try:
        response = httpx.get(base + ADMIN_CSS, timeout=2)
    except httpx.HTTPError:
        return None
    return response if response.status_code != 502 else None


@pytest.fixture
def embedded_env(tmp_path):
    env = child_env(
        UA_SQLITE_PATH=str(tmp_path / "static.sqlite3"),
        UA_OPS_TOKEN="static-test-token",
        DJANGO_STATIC_ROOT=str(tmp_path / "never-collected"),
    )
    env.pop("DATABASE_URL")
    return env


def test_runtime_serves_the_admin_stylesheet_without_collectstatic(embedded_env, tmp_path):
    port = free_port()
    process = manage(
        "runtime", "--port", str(port), "--no-workers", env=embedded_env, log=tmp_path / "rt.log"
    )
    try:
        response = wait_for(lambda: _css(f"http://127.0.0.1:{port}"), 60, 0.2)
    finally:
        stop(process)
    assert response.status_code == 200 and "text/css" in response.headers["content-type"]
    assert "No directory at" not in (tmp_path / "rt.log").read_text()


def test_daphne_serving_the_asgi_app_serves_the_admin_stylesheet(embedded_env, tmp_path):
    port = free_port()
    log = open(tmp_path / "daphne.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        cwd=ROOT,
        env={**embedded_env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        response = wait_for(lambda: _css(f"http://127.0.0.1:{port}"), 60, 0.2)
    finally:
        stop(process)
        log.close()
    assert response.status_code == 200 and "text/css" in response.headers["content-type"]
