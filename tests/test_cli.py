"""``flask jwt cleanup`` (CONTRACT §6), run with ``app.test_cli_runner()``."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import time
import typing as t
import uuid

import pytest
import sqlalchemy as sa
from conftest import PREFIX
from conftest import AppEnv
from conftest import bearer
from conftest import tokens_for
from flask import Flask

from flask_jwt_authentication.cli import jwt_cli

SESSIONS = "jwt_auth_sessions"
REFRESH_TOKENS = "jwt_auth_refresh_tokens"
REVOKED_TOKENS = "jwt_auth_revoked_tokens"
SUMMARY = re.compile(
    r"(Deleted|Would delete) (\d+) sessions, (\d+) refresh tokens,"
    r" (\d+) revoked token ids\."
)


def claims_of(token: str) -> dict[str, t.Any]:
    segment = token.split(".")[1]
    return t.cast(
        dict[str, t.Any],
        json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))),
    )


def refresh(client: t.Any, refresh_token: str) -> t.Any:
    return client.post(f"{PREFIX}/refresh", json={"refresh_token": refresh_token})


def past() -> int:
    return int(time.time()) - 60


def expire_session(env: AppEnv, sid: str) -> None:
    """Push a login session and all its refresh tokens past their expiry."""
    tables = env.db.metadata.tables
    with env.app.app_context():
        session_id = uuid.UUID(sid)
        env.db.session.execute(
            sa.update(tables[SESSIONS])
            .where(tables[SESSIONS].c.id == session_id)
            .values(expires_at=past())
        )
        env.db.session.execute(
            sa.update(tables[REFRESH_TOKENS])
            .where(tables[REFRESH_TOKENS].c.session_id == session_id)
            .values(expires_at=past())
        )
        env.db.session.commit()


def expire_consumed_refresh_tokens(env: AppEnv, sid: str) -> None:
    table = env.db.metadata.tables[REFRESH_TOKENS]
    with env.app.app_context():
        env.db.session.execute(
            sa.update(table)
            .where(
                table.c.session_id == uuid.UUID(sid), table.c.consumed_at.is_not(None)
            )
            .values(expires_at=past())
        )
        env.db.session.commit()


def expire_revoked_jti(env: AppEnv, jti: str) -> None:
    table = env.db.metadata.tables[REVOKED_TOKENS]
    with env.app.app_context():
        env.db.session.execute(
            sa.update(table).where(table.c.jti == jti).values(expires_at=past())
        )
        env.db.session.commit()


def cleanup(env: AppEnv, *args: str) -> tuple[t.Any, tuple[str, int, int, int]]:
    result = env.app.test_cli_runner().invoke(args=["jwt", "cleanup", *args])
    assert result.exit_code == 0, result.output
    match = SUMMARY.search(result.output)
    assert match, result.output
    verb, *counts = match.groups()
    return result, (verb, *map(int, counts))  # type: ignore[return-value]


@dataclasses.dataclass
class Sessions:
    """Login sessions made through the API, then some of them aged by SQL."""

    #: Expired: logged in and refreshed once (two refresh tokens), then aged.
    expired_sid: str
    #: Live, refreshed once; its consumed refresh token is aged past its expiry.
    live_sid: str
    live_consumed: str
    live_refresh: str
    live_access: str
    #: Logged out: revoked jti aged past its expiry; the session is still live.
    old_jti: str
    #: Logged out: revoked jti still live.
    new_jti: str


@pytest.fixture
def sessions(env: AppEnv, client: t.Any) -> Sessions:
    expired = tokens_for(client)
    r = refresh(client, expired["refresh_token"])
    assert r.status_code == 200
    expired_sid = claims_of(expired["access_token"])["sid"]
    expire_session(env, expired_sid)

    live = tokens_for(client)
    r = refresh(client, live["refresh_token"])
    assert r.status_code == 200
    live_sid = claims_of(live["access_token"])["sid"]
    expire_consumed_refresh_tokens(env, live_sid)

    jtis = []
    for _ in range(2):
        token = tokens_for(client)["access_token"]
        assert client.post(f"{PREFIX}/logout", headers=bearer(token)).status_code == 204
        jtis.append(claims_of(token)["jti"])
    expire_revoked_jti(env, jtis[0])

    return Sessions(
        expired_sid=expired_sid,
        live_sid=live_sid,
        live_consumed=live["refresh_token"],
        live_refresh=r.get_json()["refresh_token"],
        live_access=r.get_json()["access_token"],
        old_jti=jtis[0],
        new_jti=jtis[1],
    )


def session_ids(env: AppEnv) -> set[str]:
    return {str(row["id"]) for row in env.table_rows(SESSIONS)}


def test_cleanup_deletes_exactly_the_expired_rows(env, client, sessions):
    before = env.row_counts()
    assert before[SESSIONS] == 4
    assert before[REFRESH_TOKENS] == 6
    assert before[REVOKED_TOKENS] == 2

    result, counts = cleanup(env)
    assert counts == ("Deleted", 1, 2, 1)
    # A short human summary: one line.
    assert result.output.strip().count("\n") == 0
    assert len(result.output) < 200

    assert sessions.expired_sid not in session_ids(env)
    assert sessions.live_sid in session_ids(env)
    assert len(session_ids(env)) == 3
    refresh_rows = env.table_rows(REFRESH_TOKENS)
    assert len(refresh_rows) == 4
    assert all(str(row["session_id"]) != sessions.expired_sid for row in refresh_rows)
    assert {row["jti"] for row in env.table_rows(REVOKED_TOKENS)} == {sessions.new_jti}

    # The live session still works.
    r = client.get("/api/me", headers=bearer(sessions.live_access))
    assert r.status_code == 200

    # Running again finds nothing more.
    assert cleanup(env)[1] == ("Deleted", 0, 0, 0)


def test_replay_is_still_detected_after_cleanup(env, client, sessions):
    cleanup(env)
    # The consumed refresh token of the live session survived, so its replay is
    # recognised and revokes the whole family.
    r = refresh(client, sessions.live_consumed)
    assert r.status_code == 401
    assert r.get_json()["error"] == "invalid_grant"
    assert "already used" in r.get_json()["error_description"]
    r = refresh(client, sessions.live_refresh)
    assert r.status_code == 401
    assert r.get_json()["error"] == "invalid_grant"
    r = client.get("/api/me", headers=bearer(sessions.live_access))
    assert r.status_code == 401
    assert r.get_json()["error"] == "invalid_token"


def test_dry_run_deletes_nothing(env, sessions):
    before = {name: env.table_rows(name) for name in (SESSIONS, REFRESH_TOKENS)}
    before_counts = env.row_counts()
    _, counts = cleanup(env, "--dry-run")
    assert counts == ("Would delete", 1, 2, 1)
    assert env.row_counts() == before_counts
    assert {name: env.table_rows(name) for name in before} == before
    # The real run then deletes what the dry run announced.
    assert cleanup(env)[1] == ("Deleted", 1, 2, 1)


def test_batch_size_one_removes_everything(env, client, sessions):
    for sid in session_ids(env):
        expire_session(env, sid)
    expire_revoked_jti(env, sessions.new_jti)
    _, counts = cleanup(env, "--batch-size", "1")
    assert counts == ("Deleted", 4, 6, 2)
    counts_after = env.row_counts()
    assert counts_after[SESSIONS] == 0
    assert counts_after[REFRESH_TOKENS] == 0
    assert counts_after[REVOKED_TOKENS] == 0
    # The application's own rows are untouched.
    assert counts_after["users"] == 1


def test_cleanup_with_nothing_to_do(env):
    _, counts = cleanup(env)
    assert counts == ("Deleted", 0, 0, 0)


@pytest.mark.parametrize(
    "args",
    [["--batch-size", "0"], ["--batch-size", "many"], ["--time-limit", "0"]],
)
def test_bad_options_are_usage_errors(env, args):
    result = env.app.test_cli_runner().invoke(args=["jwt", "cleanup", *args])
    assert result.exit_code == 2
    assert "Invalid value" in result.output


def test_cleanup_without_the_extension():
    app = Flask("plain")
    app.cli.add_command(jwt_cli)
    result = app.test_cli_runner().invoke(args=["jwt", "cleanup"])
    assert result.exit_code != 0
    assert "JWTAuthentication is not initialised" in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
