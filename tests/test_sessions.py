"""Login sessions: idle and absolute lifetimes, the grace window, listing
and ending sessions, through HTTP and the Python API, on every database backend.

The clock is controlled with time-machine: the package reads ``time.time()`` and
PyJWT ``datetime.now()``, both of which ``time_machine.travel`` moves. Every test
starts at the real current time, frozen (``tick=False``), and shifts it forward.
"""

from __future__ import annotations

import base64
import json
import time
import typing as t
import uuid

import pytest
import sqlalchemy as sa
import time_machine
from conftest import PASSWORD
from conftest import PREFIX
from conftest import AppEnv
from conftest import bearer

SESSIONS = f"{PREFIX}/sessions"
TTL = 3600
MAX_AGE = 3 * 3600
GRACE = 10
USE = "use jwt authentication"
ACCESS = "access jwt authentication"
FIELDS = {
    "id",
    "created_at",
    "last_used_at",
    "expires_at",
    "client_ip",
    "user_agent",
    "current",
}


# Helpers ---------------------------------------------------------------------------


def claims_of(token: str) -> dict[str, t.Any]:
    segment = token.split(".")[1]
    return t.cast(
        dict[str, t.Any],
        json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))),
    )


def sid_of(pair: dict[str, t.Any]) -> str:
    return t.cast(str, claims_of(pair["access_token"])["sid"])


def login(client: t.Any, username: str = "alice", agent: str = "pytest") -> t.Any:
    r = client.post(
        f"{PREFIX}/tokens",
        json={"username": username, "password": PASSWORD},
        headers={"User-Agent": agent},
    )
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()


def refresh(client: t.Any, refresh_token: str) -> t.Any:
    return client.post(f"{PREFIX}/refresh", json={"refresh_token": refresh_token})


def pair_of(response: t.Any) -> dict[str, t.Any]:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    return t.cast(dict[str, t.Any], response.get_json())


def me(client: t.Any, access_token: str) -> t.Any:
    return client.get("/api/me", headers=bearer(access_token))


def assert_error(response: t.Any, status: int, code: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"] == code, body
    assert isinstance(body["error_description"], str)


def assert_invalid_token(response: t.Any) -> None:
    assert response.status_code == 401, response.get_data(as_text=True)
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def assert_works(client: t.Any, pair: dict[str, t.Any]) -> None:
    assert me(client, pair["access_token"]).status_code == 200


def listing(client: t.Any, access_token: str) -> list[dict[str, t.Any]]:
    r = client.get(SESSIONS, headers=bearer(access_token))
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.headers["Cache-Control"] == "no-store"
    return t.cast(list[dict[str, t.Any]], r.get_json()["sessions"])


def session_rows(env: AppEnv) -> dict[str, dict[str, t.Any]]:
    return {str(row["id"]): row for row in env.table_rows("jwt_auth_sessions")}


def deny(env: AppEnv, denied: set[str]) -> None:
    """A permission checker that denies ``denied`` and grants the defaults."""

    @env.jwt.permission_checker
    def check(user: t.Any, permission: str) -> bool:
        if permission in denied:
            return False
        if permission == ACCESS:
            return True
        return permission == USE and user is not None


@pytest.fixture
def clock() -> t.Iterator[t.Any]:
    """The clock, frozen at the real current time; ``clock.shift(seconds)``."""
    with time_machine.travel(time.time(), tick=False) as traveller:
        yield traveller


@pytest.fixture
def app_env(make_app: t.Callable[..., AppEnv], database_url: str) -> AppEnv:
    """Default settings on each backend, users alice and bob."""
    env = make_app(database_url)
    env.create_user("alice")
    env.create_user("bob")
    return env


def configured(
    make_app: t.Callable[..., AppEnv], database_url: str, **config: t.Any
) -> AppEnv:
    env = make_app(database_url, **config)
    env.create_user("alice")
    env.create_user("bob")
    return env


# Idle lifetime ---------------------------------------------------------------------


def test_idle_refresh_token_expires_after_the_ttl(
    make_app: t.Callable[..., AppEnv], database_url: str, clock: t.Any
) -> None:
    env = configured(make_app, database_url, JWT_AUTH_REFRESH_TOKEN_TTL=TTL)
    client = env.app.test_client()
    pair = login(client)
    assert pair["refresh_expires_in"] == TTL
    clock.shift(TTL)  # exactly the TTL: expired (expires_at is exclusive)
    assert_error(refresh(client, pair["refresh_token"]), 401, "invalid_grant")
    clock.shift(1)
    assert_error(refresh(client, pair["refresh_token"]), 401, "invalid_grant")
    # Nothing was consumed, nothing revoked: an expired token is simply refused.
    rows = env.table_rows("jwt_auth_refresh_tokens")
    assert [row["consumed_at"] for row in rows] == [None]
    assert all(row["revoked_at"] is None for row in session_rows(env).values())


def test_idle_session_lives_on_while_it_is_used(
    make_app: t.Callable[..., AppEnv], database_url: str, clock: t.Any
) -> None:
    env = configured(make_app, database_url, JWT_AUTH_REFRESH_TOKEN_TTL=TTL)
    client = env.app.test_client()
    pair = login(client)
    sid = sid_of(pair)
    # Refreshed just before each token's TTL runs out, five times over: the
    # session lives far past the TTL counted from the log-in.
    for _ in range(5):
        clock.shift(TTL - 1)
        pair = pair_of(refresh(client, pair["refresh_token"]))
        assert pair["refresh_expires_in"] == TTL
        assert sid_of(pair) == sid
        assert_works(client, pair)
    assert 5 * (TTL - 1) > TTL
    # Then left idle for a whole TTL: over.
    clock.shift(TTL)
    assert_error(refresh(client, pair["refresh_token"]), 401, "invalid_grant")


# Absolute lifetime -----------------------------------------------------------------


def test_absolute_lifetime_caps_refreshes(
    make_app: t.Callable[..., AppEnv], database_url: str, clock: t.Any
) -> None:
    env = configured(
        make_app,
        database_url,
        JWT_AUTH_REFRESH_TOKEN_TTL=TTL,
        JWT_AUTH_SESSION_MAX_AGE=MAX_AGE,
    )
    client = env.app.test_client()
    pair = login(client)
    assert pair["refresh_expires_in"] == TTL
    elapsed = 0
    step = TTL // 2
    seen = []
    while elapsed + step < MAX_AGE:
        clock.shift(step)
        elapsed += step
        pair = pair_of(refresh(client, pair["refresh_token"]))
        remaining = MAX_AGE - elapsed
        # Never beyond the session's remaining lifetime, never beyond the TTL.
        assert pair["refresh_expires_in"] == min(TTL, remaining)
        seen.append(pair["refresh_expires_in"])
        assert_works(client, pair)
    # The value shrank once the max age came within one TTL.
    assert seen[0] == TTL
    assert seen[-1] < TTL
    assert seen == sorted(seen, reverse=True)
    # The last refresh token expires with the session: presenting it at the max
    # age fails, although a TTL from its issue would still allow it.
    last_issue = elapsed
    clock.shift(MAX_AGE - elapsed)
    assert MAX_AGE - last_issue < TTL
    assert_error(refresh(client, pair["refresh_token"]), 401, "invalid_grant")
    clock.shift(60)
    assert_error(refresh(client, pair["refresh_token"]), 401, "invalid_grant")


WEEK = 7 * 86400
THIRTY_DAYS = 30 * 86400


def test_default_absolute_lifetime_is_30_days(
    make_app: t.Callable[..., AppEnv], database_url: str, clock: t.Any
) -> None:
    """Unconfigured, a session refreshed once a week ends 30 days after the log-in,
    while the idle lifetime stays the refresh TTL (14 days)."""
    env = configured(make_app, database_url)
    assert env.app.config.get("JWT_AUTH_SESSION_MAX_AGE", "unset") == "unset"
    client = env.app.test_client()
    pair = login(client)
    assert pair["refresh_expires_in"] == 1209600
    for week in range(1, 5):
        clock.shift(WEEK)
        pair = pair_of(refresh(client, pair["refresh_token"]))
        assert pair["refresh_expires_in"] == min(1209600, THIRTY_DAYS - week * WEEK)
    assert pair["refresh_expires_in"] == 2 * 86400
    clock.shift(2 * 86400)
    assert_error(refresh(client, pair["refresh_token"]), 401, "invalid_grant")


def test_no_absolute_lifetime_only_when_set_to_none(
    make_app: t.Callable[..., AppEnv], database_url: str, clock: t.Any
) -> None:
    env = configured(make_app, database_url, JWT_AUTH_SESSION_MAX_AGE=None)
    client = env.app.test_client()
    pair = login(client)
    for _ in range(10):  # 70 days, refreshed weekly
        clock.shift(WEEK)
        pair = pair_of(refresh(client, pair["refresh_token"]))
        assert pair["refresh_expires_in"] == 1209600
    assert_works(client, pair)


def test_refresh_one_second_before_the_max_age(
    make_app: t.Callable[..., AppEnv], database_url: str, clock: t.Any
) -> None:
    env = configured(
        make_app,
        database_url,
        JWT_AUTH_REFRESH_TOKEN_TTL=TTL,
        JWT_AUTH_SESSION_MAX_AGE=TTL + 100,
    )
    client = env.app.test_client()
    pair = login(client)
    clock.shift(TTL - 1)
    pair = pair_of(refresh(client, pair["refresh_token"]))
    assert pair["refresh_expires_in"] == 101
    clock.shift(100)
    pair = pair_of(refresh(client, pair["refresh_token"]))
    assert pair["refresh_expires_in"] == 1
    clock.shift(1)
    assert_error(refresh(client, pair["refresh_token"]), 401, "invalid_grant")


def test_max_age_shorter_than_the_ttl_caps_the_first_token(
    make_app: t.Callable[..., AppEnv], database_url: str, clock: t.Any
) -> None:
    env = configured(
        make_app,
        database_url,
        JWT_AUTH_REFRESH_TOKEN_TTL=TTL,
        JWT_AUTH_SESSION_MAX_AGE=600,
    )
    client = env.app.test_client()
    pair = login(client)
    assert pair["refresh_expires_in"] == 600
    [row] = listing(client, pair["access_token"])
    assert row["expires_at"] == row["created_at"] + 600
    clock.shift(600)
    assert_error(refresh(client, pair["refresh_token"]), 401, "invalid_grant")


# The grace window ------------------------------------------------------------------


def test_grace_off_second_use_ends_the_session(app_env: AppEnv, clock: t.Any) -> None:
    """The default (0): a consumed token presented again, even a second later,
    revokes the session: its refresh tokens and its access tokens fail."""
    client = app_env.app.test_client()
    first = login(client)
    other = login(client)
    clock.shift(1)
    second = pair_of(refresh(client, first["refresh_token"]))
    assert_error(refresh(client, first["refresh_token"]), 401, "invalid_grant")
    assert_error(refresh(client, second["refresh_token"]), 401, "invalid_grant")
    assert_invalid_token(me(client, first["access_token"]))
    assert_invalid_token(me(client, second["access_token"]))
    assert session_rows(app_env)[sid_of(first)]["revoke_reason"] == "reuse"
    # Another session of the same user is untouched.
    assert_works(client, other)
    pair_of(refresh(client, other["refresh_token"]))


def test_grace_on_allows_the_just_consumed_token_again(
    make_app: t.Callable[..., AppEnv], database_url: str, clock: t.Any
) -> None:
    """Within the window the just-consumed token gets a pair of its own, once,
    and the first successor stays valid: a client that lost the answer carries
    on. A third presentation is reuse (tests/test_race.py races them)."""
    env = configured(make_app, database_url, JWT_AUTH_REFRESH_GRACE_PERIOD=GRACE)
    client = env.app.test_client()
    first = login(client)
    sid = sid_of(first)
    clock.shift(1)
    lost = pair_of(refresh(client, first["refresh_token"]))
    clock.shift(GRACE)  # the window's last second
    again = pair_of(refresh(client, first["refresh_token"]))
    assert again["refresh_token"] != lost["refresh_token"]
    assert sid_of(again) == sid_of(lost) == sid
    assert_works(client, lost)
    assert_works(client, again)
    assert session_rows(env)[sid]["revoked_at"] is None
    # Both successors work; each is still a one-use token.
    third = pair_of(refresh(client, lost["refresh_token"]))
    fourth = pair_of(refresh(client, again["refresh_token"]))
    assert_works(client, third)
    assert_works(client, fourth)
    assert session_rows(env)[sid]["revoked_at"] is None


def test_grace_on_allows_one_re_presentation_only(
    make_app: t.Callable[..., AppEnv], database_url: str, clock: t.Any
) -> None:
    """Presenting a consumed token ten times within the window no longer forks
    the session ten times: the second re-presentation is reuse, and the whole
    family dies, the successors included."""
    env = configured(make_app, database_url, JWT_AUTH_REFRESH_GRACE_PERIOD=GRACE)
    client = env.app.test_client()
    first = login(client)
    sid = sid_of(first)
    lost = pair_of(refresh(client, first["refresh_token"]))
    again = pair_of(refresh(client, first["refresh_token"]))
    for _ in range(8):
        assert_error(refresh(client, first["refresh_token"]), 401, "invalid_grant")
    assert session_rows(env)[sid]["revoke_reason"] == "reuse"
    for pair in (lost, again):
        assert_invalid_token(me(client, pair["access_token"]))
        assert_error(refresh(client, pair["refresh_token"]), 401, "invalid_grant")


def test_grace_on_after_the_window_ends_the_session(
    make_app: t.Callable[..., AppEnv], database_url: str, clock: t.Any
) -> None:
    env = configured(make_app, database_url, JWT_AUTH_REFRESH_GRACE_PERIOD=GRACE)
    client = env.app.test_client()
    first = login(client)
    second = pair_of(refresh(client, first["refresh_token"]))
    clock.shift(GRACE + 1)
    assert_error(refresh(client, first["refresh_token"]), 401, "invalid_grant")
    assert_error(refresh(client, second["refresh_token"]), 401, "invalid_grant")
    assert_invalid_token(me(client, second["access_token"]))
    assert session_rows(env)[sid_of(first)]["revoke_reason"] == "reuse"


def test_grace_on_a_token_two_steps_back_ends_the_session(
    make_app: t.Callable[..., AppEnv], database_url: str, clock: t.Any
) -> None:
    """Only the immediate predecessor of an unused token is forgiven: once its
    successor was used, presenting it is reuse, even within the window."""
    env = configured(make_app, database_url, JWT_AUTH_REFRESH_GRACE_PERIOD=GRACE)
    client = env.app.test_client()
    first = login(client)
    second = pair_of(refresh(client, first["refresh_token"]))
    clock.shift(1)
    third = pair_of(refresh(client, second["refresh_token"]))
    clock.shift(1)
    assert_error(refresh(client, first["refresh_token"]), 401, "invalid_grant")
    assert_error(refresh(client, third["refresh_token"]), 401, "invalid_grant")
    assert_invalid_token(me(client, third["access_token"]))
    assert session_rows(env)[sid_of(first)]["revoke_reason"] == "reuse"


def test_grace_on_does_not_revive_an_expired_token(
    make_app: t.Callable[..., AppEnv], database_url: str, clock: t.Any
) -> None:
    """The window forgives a second use, not the absolute lifetime."""
    env = configured(
        make_app,
        database_url,
        JWT_AUTH_REFRESH_GRACE_PERIOD=GRACE,
        JWT_AUTH_SESSION_MAX_AGE=100,
    )
    client = env.app.test_client()
    first = login(client)
    clock.shift(95)
    second = pair_of(refresh(client, first["refresh_token"]))
    assert second["refresh_expires_in"] == 5
    clock.shift(5)
    assert_error(refresh(client, first["refresh_token"]), 401, "invalid_grant")
    assert_error(refresh(client, second["refresh_token"]), 401, "invalid_grant")


# Listing ---------------------------------------------------------------------------


def test_listing_shows_the_callers_live_sessions(app_env: AppEnv, clock: t.Any) -> None:
    env = app_env
    client = env.app.test_client()
    first = login(client, agent="first agent")
    clock.shift(5)
    second = login(client, agent="second agent")
    revoked = login(client)
    bobs = login(client, "bob")
    r = client.delete(
        f"{SESSIONS}/{sid_of(revoked)}", headers=bearer(second["access_token"])
    )
    assert r.status_code == 204

    sessions = listing(client, second["access_token"])
    # Most recently used first; bob's and the revoked one are not there.
    assert [s["id"] for s in sessions] == [sid_of(second), sid_of(first)]
    now = int(time.time())
    for s in sessions:
        assert set(s) == FIELDS
        assert s["client_ip"] == "127.0.0.1"
        assert s["expires_at"] == s["created_at"] + 1209600
        assert s["created_at"] == s["last_used_at"]
    assert sessions[0]["user_agent"] == "second agent"
    assert sessions[1]["user_agent"] == "first agent"
    assert sessions[0]["created_at"] == now
    assert sessions[1]["created_at"] == now - 5
    assert [s["current"] for s in sessions] == [True, False]
    # From the other session's token, ``current`` moves.
    assert [s["current"] for s in listing(client, first["access_token"])] == [
        False,
        True,
    ]
    assert [s["id"] for s in listing(client, bobs["access_token"])] == [sid_of(bobs)]


def idle_and_active(
    make_app: t.Callable[..., AppEnv], database_url: str, clock: t.Any
) -> tuple[AppEnv, t.Any, dict[str, t.Any], dict[str, t.Any]]:
    """Two sessions of alice, ``idle`` logged in TTL - 10 s before ``active``; the
    clock is left just before ``idle`` expires."""
    env = configured(
        make_app,
        database_url,
        JWT_AUTH_REFRESH_TOKEN_TTL=TTL,
        JWT_AUTH_ACCESS_TOKEN_TTL=4 * TTL,
    )
    client = env.app.test_client()
    idle = login(client)
    clock.shift(TTL - 10)
    active = login(client)
    return env, client, idle, active


def test_listing_leaves_out_expired_sessions(
    make_app: t.Callable[..., AppEnv], database_url: str, clock: t.Any
) -> None:
    _, client, idle, active = idle_and_active(make_app, database_url, clock)
    assert {s["id"] for s in listing(client, active["access_token"])} == {
        sid_of(idle),
        sid_of(active),
    }
    clock.shift(10)  # ``idle``'s refresh token has expired, ``active``'s has not
    assert [s["id"] for s in listing(client, active["access_token"])] == [
        sid_of(active)
    ]


def test_delete_an_expired_session_is_404(
    make_app: t.Callable[..., AppEnv], database_url: str, clock: t.Any
) -> None:
    """A session past its idle lifetime is not live: ending it is a 404."""
    env, client, idle, active = idle_and_active(make_app, database_url, clock)
    clock.shift(10)
    r = client.delete(
        f"{PREFIX}/sessions/{sid_of(idle)}", headers=bearer(active["access_token"])
    )
    assert_error(r, 404, "not_found")
    assert session_rows(env)[sid_of(idle)]["revoked_at"] is None


def test_last_used_at_advances_on_refresh(app_env: AppEnv, clock: t.Any) -> None:
    client = app_env.app.test_client()
    first = login(client)
    older = login(client)
    created = int(time.time())
    clock.shift(120)
    second = pair_of(refresh(client, first["refresh_token"]))
    sessions = listing(client, second["access_token"])
    # The refreshed session is now the most recently used.
    assert [s["id"] for s in sessions] == [sid_of(first), sid_of(older)]
    assert sessions[0]["created_at"] == created
    assert sessions[0]["last_used_at"] == created + 120
    assert sessions[0]["expires_at"] == created + 120 + 1209600
    assert sessions[0]["current"] is True
    assert sessions[1]["last_used_at"] == created


def test_listing_needs_a_bearer_token(app_env: AppEnv) -> None:
    client = app_env.app.test_client()
    login(client)
    r = client.get(SESSIONS)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer realm=")
    assert "error=" not in r.headers["WWW-Authenticate"]
    assert_invalid_token(client.get(SESSIONS, headers=bearer("not.a.token")))
    for method in (client.delete, client.delete):
        assert method(SESSIONS).status_code == 401
    assert client.delete(f"{SESSIONS}/{uuid.uuid4()}").status_code == 401


def test_listing_refuses_a_logged_out_token(app_env: AppEnv) -> None:
    client = app_env.app.test_client()
    pair = login(client)
    r = client.post(f"{PREFIX}/logout", headers=bearer(pair["access_token"]))
    assert r.status_code == 204
    assert_invalid_token(client.get(SESSIONS, headers=bearer(pair["access_token"])))


def test_sessions_without_the_use_permission(app_env: AppEnv) -> None:
    env = app_env
    deny(env, {USE})
    client = env.app.test_client()
    pair = login(client)
    before = env.row_counts()
    for r in (
        client.get(SESSIONS, headers=bearer(pair["access_token"])),
        client.delete(SESSIONS, headers=bearer(pair["access_token"])),
        client.delete(
            f"{SESSIONS}/{sid_of(pair)}", headers=bearer(pair["access_token"])
        ),
    ):
        assert_error(r, 403, "insufficient_scope")
        assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]
    assert env.row_counts() == before
    assert session_rows(env)[sid_of(pair)]["revoked_at"] is None
    assert_works(client, pair)


# Ending sessions over HTTP ---------------------------------------------------------


def test_delete_one_session(app_env: AppEnv) -> None:
    env = app_env
    client = env.app.test_client()
    phone = login(client)
    laptop = login(client)
    r = client.delete(
        f"{SESSIONS}/{sid_of(phone)}", headers=bearer(laptop["access_token"])
    )
    assert r.status_code == 204
    assert r.get_data() == b""
    # Its access token fails on the next request, its refresh token too.
    assert_invalid_token(me(client, phone["access_token"]))
    assert_error(refresh(client, phone["refresh_token"]), 401, "invalid_grant")
    assert session_rows(env)[sid_of(phone)]["revoke_reason"] == "revoked by owner"
    # The caller's own session lives on.
    assert_works(client, laptop)
    assert [s["id"] for s in listing(client, laptop["access_token"])] == [
        sid_of(laptop)
    ]
    # A second delete of the same session: not live any more.
    r = client.delete(
        f"{SESSIONS}/{sid_of(phone)}", headers=bearer(laptop["access_token"])
    )
    assert_error(r, 404, "not_found")


def test_delete_the_calling_session(app_env: AppEnv) -> None:
    client = app_env.app.test_client()
    pair = login(client)
    r = client.delete(
        f"{SESSIONS}/{sid_of(pair)}", headers=bearer(pair["access_token"])
    )
    assert r.status_code == 204
    assert_invalid_token(me(client, pair["access_token"]))
    assert_error(refresh(client, pair["refresh_token"]), 401, "invalid_grant")


@pytest.mark.parametrize(
    "case",
    ["other user", "unknown", "malformed", "sql", "empty-ish", "upper-case other"],
)
def test_delete_a_session_that_is_not_the_callers(app_env: AppEnv, case: str) -> None:
    env = app_env
    client = env.app.test_client()
    mine = login(client)
    bobs = login(client, "bob")
    target = {
        "other user": sid_of(bobs),
        "unknown": str(uuid.uuid4()),
        "malformed": "not-a-session-id",
        "sql": "1' OR '1'='1",
        "empty-ish": "%20",
        "upper-case other": sid_of(bobs).upper(),
    }[case]
    before = env.table_rows("jwt_auth_sessions")
    r = client.delete(f"{SESSIONS}/{target}", headers=bearer(mine["access_token"]))
    assert_error(r, 404, "not_found")
    # Nothing changed.
    assert env.table_rows("jwt_auth_sessions") == before
    assert_works(client, bobs)
    assert_works(client, mine)
    pair_of(refresh(client, bobs["refresh_token"]))


def test_delete_all_sessions_logs_out_everywhere(app_env: AppEnv) -> None:
    env = app_env
    client = env.app.test_client()
    pairs = [login(client) for _ in range(3)]
    refreshed = pair_of(refresh(client, pairs[2]["refresh_token"]))
    bobs = login(client, "bob")
    r = client.delete(SESSIONS, headers=bearer(pairs[0]["access_token"]))
    assert r.status_code == 204
    for pair in [*pairs, refreshed]:
        assert_invalid_token(me(client, pair["access_token"]))
        assert_error(refresh(client, pair["refresh_token"]), 401, "invalid_grant")
    rows = session_rows(env)
    assert {rows[sid_of(p)]["revoke_reason"] for p in pairs} == {"logout everywhere"}
    # Bob is not affected.
    assert rows[sid_of(bobs)]["revoked_at"] is None
    assert_works(client, bobs)
    assert [s["id"] for s in listing(client, bobs["access_token"])] == [sid_of(bobs)]
    # A new log-in starts afresh.
    fresh = login(client)
    assert [s["id"] for s in listing(client, fresh["access_token"])] == [sid_of(fresh)]


# The Python API --------------------------------------------------------------------


def test_python_api(app_env: AppEnv) -> None:
    env = app_env
    client = env.app.test_client()
    a1 = login(client)
    a2 = login(client)
    a3 = login(client)
    b1 = login(client, "bob")
    alice_id = claims_of(a1["access_token"])["uid"]
    bob_id = claims_of(b1["access_token"])["uid"]
    with env.app.app_context():
        alice = env.db.session.get(env.User, alice_id)
        bob = env.db.session.get(env.User, bob_id)
        infos = env.jwt.sessions(alice)
        assert {i.id for i in infos} == {sid_of(a1), sid_of(a2), sid_of(a3)}
        assert set(infos[0].to_dict()) == FIELDS - {"current"}
        assert [i.id for i in env.jwt.sessions(bob)] == [sid_of(b1)]

        # One session, anyone's; by str or UUID.
        assert env.jwt.revoke_session(sid_of(a1)) is True
        assert env.jwt.revoke_session(sid_of(a1)) is False
        assert env.jwt.revoke_session(uuid.UUID(sid_of(a2))) is True
        assert env.jwt.revoke_session(uuid.uuid4()) is False
        # Restricted to a user: bob's session is not alice's.
        assert env.jwt.revoke_session(sid_of(b1), user=alice) is False
        assert [i.id for i in env.jwt.sessions(alice)] == [sid_of(a3)]
    assert_invalid_token(me(client, a1["access_token"]))
    assert_invalid_token(me(client, a2["access_token"]))
    assert_error(refresh(client, a2["refresh_token"]), 401, "invalid_grant")
    assert_works(client, a3)
    assert_works(client, b1)

    a4 = login(client)
    with env.app.app_context():
        alice = env.db.session.get(env.User, alice_id)
        bob = env.db.session.get(env.User, bob_id)
        assert env.jwt.revoke_sessions(alice) == 2
        assert env.jwt.revoke_sessions(alice) == 0
        assert env.jwt.sessions(alice) == []
        assert len(env.jwt.sessions(bob)) == 1
    for pair in (a3, a4):
        assert_invalid_token(me(client, pair["access_token"]))
        assert_error(refresh(client, pair["refresh_token"]), 401, "invalid_grant")
    assert_works(client, b1)


def test_disabled_users_refresh_ends_all_its_sessions(app_env: AppEnv) -> None:
    env = app_env
    client = env.app.test_client()
    pairs = [login(client) for _ in range(3)]
    bobs = login(client, "bob")
    env.set_user("alice", is_active=False)
    assert_error(refresh(client, pairs[0]["refresh_token"]), 401, "invalid_grant")
    rows = session_rows(env)
    assert {rows[sid_of(p)]["revoke_reason"] for p in pairs} == {"user disabled"}
    assert rows[sid_of(bobs)]["revoked_at"] is None
    # Re-enabled, the old sessions stay ended.
    env.set_user("alice", is_active=True)
    for pair in pairs:
        assert_invalid_token(me(client, pair["access_token"]))
        assert_error(refresh(client, pair["refresh_token"]), 401, "invalid_grant")
    assert_works(client, bobs)
    with env.app.app_context():
        table = env.db.metadata.tables["jwt_auth_refresh_tokens"]
        consumed = env.db.session.execute(
            sa.select(sa.func.count()).where(table.c.consumed_at.is_not(None))
        ).scalar_one()
    assert consumed == 0
