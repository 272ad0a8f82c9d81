"""The operator dashboard in headless Chromium against a real `manage.py runtime` (contract §9): live
updates over push, the stasis queue from the page, polling when push is off, the login flow, a clean
console and no request leaving the runtime's host."""

from __future__ import annotations

import os

import httpx
import pytest

from tests.conftest import USING_POSTGRES
from tests.e2e.browser import (
    CHROMIUM,
    OPS_TOKEN,
    Watched,
    create_missed_job,
    launch,
    open_dashboard,
    runtime_env,
    start_runtime,
    stop_runtime,
)
from tests.processes import manage, wait_for

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium at /usr/bin/chromium (`apt-get install chromium`; .ci/run does)",
    ),
    pytest.mark.django_db(transaction=True),
]

HOOKS = ("data-push-status", "data-projection-version", "data-event-id", "data-job-id", "data-session-id")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread (switching greenlets, never running
    # Django code inside it), which trips Django's async-safety check on pytest-django's own database
    # setup and flush. Nothing here touches the ORM from a coroutine, so the check is switched off.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = launch(playwright)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def runtimes(tmp_path):
    started = []

    def start(**env: str):
        runtime = start_runtime(tmp_path, runtime_env(tmp_path, USING_POSTGRES, **env))
        started.append(runtime)
        return runtime

    yield start
    for runtime in started:
        stop_runtime(runtime)


def assert_clean(watched: Watched) -> None:
    assert watched.console_errors == []
    assert watched.foreign_requests == []


def new_job(api: httpx.Client, **fields: str) -> dict:
    response = api.post("/api/v1/cron/jobs", json={"command": "dashboard test", **fields})
    assert response.status_code == 201, response.text
    return response.json()["job"]


def push_status(watched: Watched) -> str:
    return watched.page.get_attribute("[data-push-status]", "data-push-status")


def test_a_job_created_through_the_api_appears_on_the_open_calendar_within_2_s(browser, runtimes):
    runtime = runtimes()
    watched = open_dashboard(browser, runtime)
    page = watched.page
    page.wait_for_selector("[data-push-status='connected']", timeout=10000)
    page.evaluate("window.__notReloaded = true")
    with runtime.api() as api:
        job = new_job(api, every="2h", title="tidy up")
    page.wait_for_selector(f"[data-event-id^='cron|{job['job_id']}|'][data-status]", timeout=2000)
    page.wait_for_selector(f"[data-job-id='{job['job_id']}']", timeout=2000)
    assert page.evaluate("window.__notReloaded") is True
    assert page.locator("[data-projection-version]").count() == 1
    assert push_status(watched) == "connected"
    assert_clean(watched)


def test_approve_and_run_in_the_stasis_panel_turns_the_missed_entry_into_a_successful_backfill_run(
    browser, runtimes
):
    runtime = runtimes()
    job_id = create_missed_job(runtime, "report")
    with runtime.api() as api:
        entry = wait_for(lambda: _pending_entry(api, job_id), 30, 0.2)
    watched = open_dashboard(browser, runtime)
    page = watched.page
    selector = f"[data-stasis-entry='{entry['entry_id']}']"
    page.wait_for_selector(selector, timeout=5000)
    assert page.get_attribute(selector, "data-event-id") == entry["event_id"]
    assert page.get_attribute(selector, "data-status") is None
    page.click(f"{selector} [data-action='approve_backfill_run']")
    page.wait_for_selector(selector, state="detached", timeout=2000)
    with runtime.api() as api:
        run = wait_for(lambda: _finished_backfill(api, job_id), 30, 0.2)
    assert run["status"] == "success" and run["scheduled_at"] == entry["scheduled_at_epoch"]
    page.wait_for_selector(f"[data-event-id='{entry['event_id']}'][data-status='success']", timeout=5000)
    assert_clean(watched)


def _pending_entry(api: httpx.Client, job_id: str) -> dict | None:
    entries = api.get("/api/v1/ops/stasis").json()["stasis_queue"]
    return next((entry for entry in entries if entry["source_ref"] == job_id), None)


def _finished_backfill(api: httpx.Client, job_id: str) -> dict | None:
    runs = api.get(f"/api/v1/cron/jobs/{job_id}/runs").json()["runs"]
    backfills = [
        run for run in runs if run["reason"] == "backfill" and run["status"] not in ("queued", "running")
    ]
    return backfills[0] if backfills else None


def test_with_push_disabled_on_the_server_the_badge_says_so_and_the_page_polls(browser, runtimes):
    runtime = runtimes(
        UA_SCHED_PUSH_ENABLED="0",
        UA_DASHBOARD_CALENDAR_POLL_SECONDS="1",
        UA_DASHBOARD_HEARTBEAT_POLL_SECONDS="1",
    )
    watched = open_dashboard(browser, runtime)
    page = watched.page
    assert push_status(watched) == "disabled"
    with runtime.api() as api:
        job = new_job(api, every="3h", title="polled")
        api.put("/api/v1/heartbeat/sessions/agent-polled", json={"every": "30m"})
    page.wait_for_selector(f"[data-event-id^='cron|{job['job_id']}|'][data-status]", timeout=10000)
    page.wait_for_selector("[data-session-id='agent-polled']", timeout=10000)
    assert watched.websockets == []
    assert_clean(watched)


def test_with_push_disabled_in_the_client_refresh_shows_a_change_within_2_s(browser, runtimes):
    runtime = runtimes(UA_SCHED_PUSH_CLIENT_ENABLED="0")  # default poll intervals: 30 s and 20 s
    watched = open_dashboard(browser, runtime)
    page = watched.page
    assert push_status(watched) == "disabled"
    with runtime.api() as api:
        job = new_job(api, every="4h", title="refreshed")
    page.click("[data-action='refresh']")
    page.wait_for_selector(f"[data-event-id^='cron|{job['job_id']}|'][data-status]", timeout=2000)
    assert watched.websockets == []
    assert_clean(watched)


# Records every badge change with the page's clock, so the test sees "reconnecting" even if the server
# took longer to stop than the badge stays in that state.
BADGE_RECORDER = """() => {
  window.__badge = [];
  const badge = document.querySelector('[data-push-status]');
  new MutationObserver(() => {
    const last = window.__badge[window.__badge.length - 1];
    const status = badge.dataset.pushStatus;
    if (!last || last[0] !== status) window.__badge.push([status, Date.now()]);
  })
    .observe(badge, {attributes: true, attributeFilter: ['data-push-status']});
}"""


def test_a_lost_connection_shows_reconnecting_then_polling_and_push_resumes(browser, runtimes, tmp_path):
    runtime = runtimes()
    watched = open_dashboard(browser, runtime)
    page = watched.page
    page.wait_for_selector("[data-push-status='connected']", timeout=10000)
    page.evaluate(BADGE_RECORDER)
    stop_runtime(runtime)
    page.wait_for_selector("[data-push-status='polling']", timeout=20000)
    changes = page.evaluate("window.__badge")
    assert [status for status, _ in changes][:2] == ["reconnecting", "polling"]
    assert changes[1][1] - changes[0][1] < 10000  # polling follows within seconds, not at the next poll
    port = int(runtime.base.rsplit(":", 1)[1])
    restarted = start_runtime(tmp_path, runtime_env(tmp_path, USING_POSTGRES), port=port)
    try:
        page.wait_for_selector("[data-push-status='connected']", timeout=30000)
        with restarted.api() as api:
            job = new_job(api, every="5h", title="back")
        page.wait_for_selector(f"[data-event-id^='cron|{job['job_id']}|'][data-status]", timeout=2000)
    finally:
        stop_runtime(restarted)


def test_the_login_url_is_stripped_of_its_token_and_without_a_session_there_are_no_hooks(browser, runtimes):
    runtime = runtimes()
    anonymous = httpx.get(f"{runtime.base}/").text
    assert "<form" in anonymous and not any(hook in anonymous for hook in HOOKS)
    with httpx.Client(base_url=runtime.base) as client:
        redirect = client.get("/", params={"view": "day", "tz": "Europe/Berlin", "ops_token": OPS_TOKEN})
        assert redirect.status_code in (302, 303)
        assert redirect.headers["location"] == "/?view=day&tz=Europe%2FBerlin"
        page = client.get(redirect.headers["location"]).text
        assert "data-push-status" in page and OPS_TOKEN not in page
        for script in ("calendar.js", "dashboard.js"):
            assert OPS_TOKEN not in client.get(f"/static/ops_api/{script}").text
        assert client.get("/api/v1/cron/jobs").status_code == 200  # the session is an operator for the API
        refused = client.post("/api/v1/cron/jobs", json={"command": "x", "every": "1h"})
        assert refused.status_code == 403  # no CSRF token: a cookie alone may not write
    with httpx.Client(base_url=runtime.base) as client:
        wrong = client.get("/", params={"ops_token": "wrong"}, follow_redirects=True)
        assert "not valid" in wrong.text and "data-push-status" not in wrong.text

    watched = open_dashboard(browser, runtime, query="view=week&tz=Asia%2FTokyo")
    assert OPS_TOKEN not in watched.page.url and "tz=Asia%2FTokyo" in watched.page.url
    assert OPS_TOKEN not in watched.page.content()
    assert_clean(watched)


def test_a_staff_user_signs_in_with_the_login_form(browser, runtimes, tmp_path):
    runtime = runtimes()
    env = runtime_env(tmp_path, USING_POSTGRES, DJANGO_SUPERUSER_PASSWORD="s3cret-pass")
    created = manage(
        "createsuperuser", "--noinput", "--username", "ops", "--email", "ops@example.com", env=env
    )
    assert created.wait(60) == 0
    page = browser.new_context().new_page()
    page.goto(f"{runtime.base}/?view=day")
    assert page.locator("[data-push-status]").count() == 0
    page.fill("#id_username", "ops")
    page.fill("#id_password", "s3cret-pass")
    page.click("form:has(#id_username) button[type=submit]")
    page.wait_for_selector("[data-push-status]", timeout=10000)
    assert "view=day" in page.url


def test_at_800_px_an_event_opens_its_details_and_a_change_request_previews_then_applies(browser, runtimes):
    runtime = runtimes()
    with runtime.api() as api:
        job = new_job(api, every="3h", title="narrow")
    watched = open_dashboard(browser, runtime, width=800)
    page = watched.page
    assert page.evaluate("document.documentElement.scrollWidth") <= 800  # no sideways scrolling
    event = page.locator(f"[data-event-id^='cron|{job['job_id']}|'][data-status='scheduled']").first
    event.focus()
    page.keyboard.press("Enter")  # events are buttons: the keyboard opens them too
    page.wait_for_selector("[data-event-dialog][open]")
    page.click("[data-change-for]")
    page.fill("[data-cr-text]", "every 2 hours")
    page.click("[data-change-request] button[type=submit]")
    page.wait_for_selector("[data-cr-proposal] >> text=every 2 h")
    page.click("[data-cr-proposal] >> text=Confirm")
    page.wait_for_selector("[data-cr-proposal] >> text=Change applied")
    with runtime.api() as api:
        wait_for(lambda: api.get(f"/api/v1/cron/jobs/{job['job_id']}").json()["job"]["every_seconds"] == 7200)
    assert_clean(watched)
