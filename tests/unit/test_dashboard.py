"""The dashboard's server side (contract §9): login by token or staff account, the token stripped from
every URL, no hooks without a session, the session as an API operator with CSRF on writes, the window
and its DST marks, and panels read through the services."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.contrib.auth.models import User
from django.test import Client

from ops_api.calendar_window import calendar_window
from tests.conftest import OPERATOR_TOKEN, job_payload

pytestmark = pytest.mark.django_db

HOOKS = (
    b"data-push-status",
    b"data-projection-version",
    b"data-job-id",
    b"data-stasis-entry",
    b"data-action",
)


@pytest.fixture
def browser() -> Client:
    """A browser-like client: CSRF is enforced as it is for real browsers."""
    return Client(enforce_csrf_checks=True)


def logged_in(browser: Client) -> Client:
    response = browser.get(f"/?ops_token={OPERATOR_TOKEN}")
    assert response.status_code == 303
    return browser


def test_without_a_session_the_page_is_a_login_form_with_no_hooks(browser):
    response = browser.get("/")
    assert response.status_code == 200
    assert b'name="username"' in response.content and b'name="ops_token"' in response.content
    assert not any(hook in response.content for hook in HOOKS)


def test_the_token_url_redirects_to_the_same_url_without_the_token(browser):
    response = browser.get(f"/?view=day&ops_token={OPERATOR_TOKEN}&tz=Asia/Tokyo&start=2026-06-01")
    assert response.status_code == 303
    assert response["Location"] == "/?view=day&tz=Asia%2FTokyo&start=2026-06-01"
    assert browser.session["ops_operator"] is True
    page = browser.get(response["Location"])
    assert page.status_code == 200 and b"data-push-status" in page.content
    assert OPERATOR_TOKEN.encode() not in page.content
    assert page.content.count(b"data-projection-version") == 1


def test_a_wrong_token_logs_nobody_in_and_says_so(browser):
    response = browser.get("/?ops_token=wrong", follow=True)
    assert b"not valid" in response.content and b"data-push-status" not in response.content
    assert "ops_operator" not in browser.session


def test_an_owner_token_is_not_an_operator_login(browser, owner_client):
    from ops_api.models import OwnerApiToken

    _, token = OwnerApiToken.issue("alice")
    browser.get(f"/?ops_token={token}")
    assert b"data-push-status" not in browser.get("/").content


def test_the_token_form_logs_in_without_putting_the_token_in_a_url(browser):
    browser.get("/")  # sets the CSRF cookie, as the rendered form does
    csrf = browser.cookies["csrftoken"].value
    response = browser.post("/?view=week", {"ops_token": OPERATOR_TOKEN, "csrfmiddlewaretoken": csrf})
    assert response.status_code == 303 and response["Location"] == "/?view=week"
    assert b"data-push-status" in browser.get("/").content


def test_a_staff_user_logs_in_and_a_non_staff_user_does_not(browser):
    User.objects.create_user("ops", password="pw-ops-123", is_staff=True)
    User.objects.create_user("guest", password="pw-guest-123")
    browser.get("/")
    csrf = browser.cookies["csrftoken"].value
    refused = browser.post(
        "/", {"username": "guest", "password": "pw-guest-123", "csrfmiddlewaretoken": csrf}
    )
    assert b"not a staff account" in refused.content and b"data-push-status" not in refused.content
    accepted = browser.post("/", {"username": "ops", "password": "pw-ops-123", "csrfmiddlewaretoken": csrf})
    assert accepted.status_code == 303
    assert b"data-push-status" in browser.get("/").content


def test_a_dashboard_session_is_an_operator_for_the_api_with_csrf_on_writes(browser):
    assert browser.get("/api/v1/cron/jobs").status_code == 401
    logged_in(browser)
    assert browser.get("/api/v1/cron/jobs").status_code == 200
    refused = browser.post("/api/v1/cron/jobs", job_payload(), content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    browser.get("/")  # the page hands out the CSRF token
    csrf = browser.cookies["csrftoken"].value
    created = browser.post(
        "/api/v1/cron/jobs", job_payload(), content_type="application/json", HTTP_X_CSRFTOKEN=csrf
    )
    assert created.status_code == 201


def test_a_staff_user_session_is_an_operator_for_the_api(browser):
    User.objects.create_user("ops", password="pw-ops-123", is_staff=True)
    browser.login(username="ops", password="pw-ops-123")
    assert browser.get("/api/v1/cron/jobs").status_code == 200


def test_signing_out_ends_the_operator_session(browser):
    logged_in(browser)
    browser.get("/")
    csrf = browser.cookies["csrftoken"].value
    assert browser.post("/dashboard/logout", HTTP_X_CSRFTOKEN=csrf).status_code == 303
    assert browser.get("/api/v1/cron/jobs").status_code == 401
    assert b"data-push-status" not in browser.get("/").content


def test_panels_need_a_session_and_show_rows_through_the_services(browser, operator):
    job = operator.post("/api/v1/cron/jobs", job_payload(title="digest"), format="json").json()["job"]
    operator.put("/api/v1/heartbeat/sessions/agent-7", {"every": "30m"}, format="json")
    assert browser.get("/dashboard/panels/jobs").status_code == 403
    logged_in(browser)
    jobs = browser.get("/dashboard/panels/jobs?tz=Europe/Berlin")
    assert f'data-job-id="{job["job_id"]}"'.encode() in jobs.content
    assert b'data-session-id="agent-7"' in browser.get("/dashboard/panels/sessions").content
    assert browser.get("/dashboard/panels/nope").status_code == 404
    runs = browser.get(f"/dashboard/jobs/{job['job_id']}/runs")
    assert runs.status_code == 200 and b"No runs yet" in runs.content


def test_the_page_renders_the_client_flags_and_poll_intervals(browser, settings):
    settings.UA_SCHED_PUSH_CLIENT_ENABLED = False
    settings.UA_DASHBOARD_CALENDAR_POLL_SECONDS = 2.5
    page = logged_in(browser).get("/").content.decode()
    assert 'data-push-status="disabled"' in page
    assert '"push_client_enabled": false' in page and '"calendar_poll_seconds": 2.5' in page


def test_a_week_starts_on_the_sunday_on_or_before_start():
    now = datetime(2026, 6, 3, 12, tzinfo=UTC)  # a Wednesday
    assert calendar_window("week", "2026-06-03", "UTC", now).first_day == date(2026, 5, 31)
    assert calendar_window("week", "2026-05-31", "UTC", now).first_day == date(2026, 5, 31)
    assert calendar_window(None, None, None, now).first_day == date(2026, 5, 31)
    day = calendar_window("day", "2026-06-05", "Asia/Tokyo", now)
    assert (day.first_day, day.days) == (date(2026, 6, 5), 1)
    assert day.start_utc == datetime(2026, 6, 4, 15, tzinfo=UTC)


def test_an_unknown_zone_or_date_falls_back_instead_of_failing():
    now = datetime(2026, 6, 3, 12, tzinfo=UTC)
    window = calendar_window("month", "yesterday", "Mars/Olympus", now)
    assert (window.view, window.tz_name, window.first_day) == ("week", "UTC", date(2026, 5, 31))


def test_dst_weeks_mark_the_skipped_and_the_repeated_hour():
    now = datetime(2026, 3, 1, tzinfo=UTC)
    spring = calendar_window("week", "2026-03-29", "Europe/Berlin", now)
    assert [(s.day, s.hour, s.hours, s.kind) for s in spring.shifts] == [(0, 2.0, 1.0, "gap")]
    assert (spring.end_utc - spring.start_utc).total_seconds() == 167 * 3600
    autumn = calendar_window("week", "2026-10-25", "Europe/Berlin", now)
    assert [(s.day, s.hour, s.kind) for s in autumn.shifts] == [(0, 2.0, "repeat")]
    assert "02:00–03:00 repeated" in autumn.shifts[0].label
    assert calendar_window("week", "2026-07-01", "Europe/Berlin", now).shifts == []


def test_the_dst_mark_is_drawn_on_the_grid(browser):
    page = logged_in(browser).get("/?view=week&start=2026-11-01&tz=America/New_York").content.decode()
    assert "clock-shift shift-repeat" in page and "01:00–02:00 repeated" in page
