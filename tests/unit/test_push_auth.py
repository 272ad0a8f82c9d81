"""Who a push connection speaks for (contract §1): a token in the query or the headers, else the browser
session of its cookie (the dashboard's token login or a staff user)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore

from ops_api.auth import OPERATOR, SESSION_OPERATOR_KEY, principal_for_scope
from ops_api.models import OwnerApiToken
from tests.conftest import OPERATOR_TOKEN

pytestmark = pytest.mark.django_db


def scope(query: str = "", **headers: str) -> dict:
    return {
        "type": "websocket",
        "query_string": query.encode(),
        "headers": [(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()],
    }


def session_cookie(**data: object) -> str:
    session = SessionStore()
    session.update(data)
    session.save()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


def test_the_operator_token_is_accepted_in_the_query_or_either_header():
    assert principal_for_scope(scope(f"ops_token={OPERATOR_TOKEN}")) == OPERATOR
    assert principal_for_scope(scope(authorization=f"Bearer {OPERATOR_TOKEN}")) == OPERATOR
    assert principal_for_scope(scope(x_ua_ops_token=OPERATOR_TOKEN)) == OPERATOR


def test_an_owner_token_is_confined_to_its_owner():
    _, token = OwnerApiToken.issue("alice")
    assert principal_for_scope(scope(f"ops_token={token}")).owner_id == "alice"


def test_no_token_and_no_session_is_nobody():
    assert principal_for_scope(scope()) is None
    assert principal_for_scope(scope(cookie=f"{settings.SESSION_COOKIE_NAME}=unknown")) is None


def test_a_session_holding_the_dashboard_token_login_is_the_operator():
    assert principal_for_scope(scope(cookie=session_cookie(**{SESSION_OPERATOR_KEY: True}))) == OPERATOR


def test_a_session_of_a_staff_user_is_the_operator_and_of_another_user_is_nobody():
    staff = User.objects.create_user("ops", password="pw", is_staff=True)
    plain = User.objects.create_user("plain", password="pw")
    for user, expected in ((staff, OPERATOR), (plain, None)):
        cookie = session_cookie(
            _auth_user_id=str(user.pk),
            _auth_user_backend="django.contrib.auth.backends.ModelBackend",
            _auth_user_hash=user.get_session_auth_hash(),
        )
        assert principal_for_scope(scope(cookie=cookie)) == expected


def test_a_wrong_token_is_refused_even_beside_a_good_session():
    cookie = session_cookie(**{SESSION_OPERATOR_KEY: True})
    assert principal_for_scope(scope("ops_token=wrong", cookie=cookie)) is None
