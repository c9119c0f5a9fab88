"""``flask jwt cleanup`` (docs/cli.rst), run with ``app.test_cli_runner()``."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
import subprocess
import sys
import time
import typing as t
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import PREFIX
from conftest import AppEnv
from conftest import bearer
from conftest import tokens_for
from flask import Flask

from flask_jwt_authentication.cli import EXIT_STOPPED
from flask_jwt_authentication.cli import CleanupProgress
from flask_jwt_authentication.cli import jwt_cli
from flask_jwt_authentication.models import build_tables

SESSIONS = "jwt_auth_sessions"
REFRESH_TOKENS = "jwt_auth_refresh_tokens"
REVOKED_TOKENS = "jwt_auth_revoked_tokens"
SUMMARY = re.compile(
    r"(Deleted|Would delete) (\d+) sessions, (\d+) refresh tokens,"
    r" (\d+) revoked token ids, \d+ revocation log rows\."
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


# Exit status, quiet mode and progress on a terminal ----------------------------------

EXAMPLE_APP = Path(__file__).resolve().parent.parent / "examples" / "app.py"
FLASK = Path(sys.executable).parent / "flask"


def backlog(database: Path, sessions: int) -> str:
    """An SQLite database holding ``sessions`` expired login sessions with two
    refresh tokens each, and as many expired revoked token ids; its URL."""
    url = f"sqlite:///{database}"
    metadata = sa.MetaData()
    tables = build_tables(metadata)
    engine = sa.create_engine(url)
    try:
        metadata.create_all(engine)
        then = past()
        ids = [uuid.uuid4() for _ in range(sessions)]
        with engine.begin() as connection:
            connection.execute(
                sa.insert(tables.sessions),
                [
                    {
                        "id": sid,
                        "user_id": "1",
                        "created_at": then,
                        "last_used_at": then,
                        "expires_at": then,
                    }
                    for sid in ids
                ],
            )
            connection.execute(
                sa.insert(tables.refresh_tokens),
                [
                    {
                        "token_hash": f"{n}{sid.hex}",
                        "session_id": sid,
                        "issued_at": then,
                        "expires_at": then,
                    }
                    for sid in ids
                    for n in range(2)
                ],
            )
            connection.execute(
                sa.insert(tables.revoked_tokens),
                [
                    {"jti": sid.hex, "revoked_at": then, "expires_at": then}
                    for sid in ids
                ],
            )
    finally:
        engine.dispose()
    return url


def rows_left(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return sum(
                connection.execute(sa.text(f"SELECT COUNT(*) FROM {name}")).scalar_one()
                for name in (SESSIONS, REFRESH_TOKENS, REVOKED_TOKENS)
            )
    finally:
        engine.dispose()


def flask_env(url: str) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("FLASK_", "JWT_AUTH_"))
    }
    env.update(FLASK_APP=str(EXAMPLE_APP), FLASK_SQLALCHEMY_DATABASE_URI=url)
    return env


def run_flask(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``flask jwt cleanup ARGS`` in a process of its own, without a terminal."""
    return subprocess.run(
        [str(FLASK), "jwt", "cleanup", *args],
        env=flask_env(url),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def run_on_a_terminal(url: str, *args: str) -> tuple[int, str]:
    """``flask jwt cleanup ARGS`` with stdin, stdout and stderr on a pseudo
    terminal; its exit status and everything it wrote."""
    master, slave = os.openpty()
    try:
        process = subprocess.Popen(
            [str(FLASK), "jwt", "cleanup", *args],
            env=flask_env(url),
            stdin=slave,
            stdout=slave,
            stderr=slave,
        )
        os.close(slave)
        chunks: list[bytes] = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        status = process.wait(timeout=120)
    finally:
        os.close(master)
    return status, b"".join(chunks).decode()


def test_done_exits_0_and_stopped_exits_3(tmp_path: Path) -> None:
    """Stopped at the time limit with rows left: status 3 and the hint to run
    again; the next run (time enough) finishes: status 0."""
    url = backlog(tmp_path / "app.db", 3000)
    stopped = run_flask(url, "--time-limit", "0.1", "--batch-size", "1")
    assert stopped.returncode == EXIT_STOPPED == 3, stopped.stderr
    assert stopped.stdout.endswith(
        " revocation log rows.\nStopped at the time limit; run again to continue.\n"
    )
    assert 0 < rows_left(url) < 4 * 3000
    done = run_flask(url, "--time-limit", "120")
    assert done.returncode == 0, done.stderr
    assert "Stopped" not in done.stdout
    assert rows_left(url) == 0
    again = run_flask(url, "--time-limit", "0.1")
    assert (again.returncode, again.stdout) == (
        0,
        "Deleted 0 sessions, 0 refresh tokens, 0 revoked token ids,"
        " 0 revocation log rows.\n",
    )


def test_quiet_prints_nothing(tmp_path: Path) -> None:
    url = backlog(tmp_path / "app.db", 3000)
    stopped = run_flask(url, "--quiet", "--time-limit", "0.1", "--batch-size", "1")
    assert (stopped.returncode, stopped.stdout, stopped.stderr) == (3, "", "")
    done = run_flask(url, "-q")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert rows_left(url) == 0
    # Quiet on a terminal too.
    assert run_on_a_terminal(url, "--quiet") == (0, "")


def test_progress_on_a_terminal(tmp_path: Path) -> None:
    url = backlog(tmp_path / "app.db", 3000)
    status, output = run_on_a_terminal(url, "--batch-size", "100")
    assert status == 0, output
    lines = output.replace("\r\n", "\n").split("\n")
    assert lines[-2:] == [
        "Deleted 3000 sessions, 6000 refresh tokens, 3000 revoked token ids,"
        " 0 revocation log rows.",
        "",
    ]
    updates = [part.rstrip() for part in lines[-3].split("\r") if part.strip()]
    assert updates[0] == (
        "sessions 0/3000, refresh tokens 0/6000, revoked token ids 0/3000:"
        " 0 rows/s, time left unknown"
    )
    assert re.fullmatch(
        r"sessions 3000/3000, refresh tokens 6000/6000, revoked token ids"
        r" 3000/3000: \d+ rows/s, done",
        updates[-1],
    ), updates
    # Without a terminal: the summary only.
    url = backlog(tmp_path / "other.db", 10)
    result = run_flask(url)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        "Deleted 10 sessions, 20 refresh tokens, 10 revoked token ids,"
        " 0 revocation log rows.\n"
    )


def test_progress_line() -> None:
    """Rate and time left, from the rows deleted so far and the time spent."""
    totals = {"sessions": 100, "refresh_tokens": 200, "revoked_tokens": 100}
    progress = CleanupProgress(totals, deadline=1000.0)
    progress.started = 0.0
    counts = {"sessions": 50, "refresh_tokens": 100, "revoked_tokens": 0}
    assert progress.line(counts, 10.0) == (
        "sessions 50/100, refresh tokens 100/200, revoked token ids 0/100:"
        " 15 rows/s, about 17 s left"
    )
    progress.deadline = 12.0
    assert progress.line(counts, 10.0).endswith(
        "about 17 s left, stopping at the time limit in 2 s"
    )
    assert progress.line(counts, 12.0).endswith(
        "12 rows/s, stopped at the time limit, 250 rows left"
    )
    assert progress.line(dict(totals), 13.0).endswith("31 rows/s, done")
