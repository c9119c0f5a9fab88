"""Real storage failures in the middle of a request: the answer is 503
``temporarily_unavailable``, nothing is half-written, and the client can retry.

The failures are real: on SQLite another connection holds a read lock so the
commit cannot take the write lock; on PostgreSQL the request's own server process
is terminated before the commit.
"""

from __future__ import annotations

import contextlib
import sqlite3
import typing as t

import pytest
import sqlalchemy as sa
from conftest import PREFIX
from conftest import AppEnv
from conftest import require_backend
from conftest import tokens_for

from flask_jwt_authentication import signals


@pytest.fixture(params=["sqlite", "postgresql"])
def broken_commit(
    request: pytest.FixtureRequest, make_app: t.Callable[..., AppEnv], tmp_path
) -> tuple[AppEnv, t.Callable[[], contextlib.AbstractContextManager[None]]]:
    """An app, and a context manager that makes the next commit fail for real."""
    if request.param == "sqlite":
        path = tmp_path / "faults.db"
        env = make_app(
            f"sqlite:///{path}",
            SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"timeout": 0.2}},
        )
        reader: list[sqlite3.Connection] = []

        def hold_read_lock(sender: t.Any, **kwargs: t.Any) -> None:
            connection = sqlite3.connect(path, isolation_level=None)
            connection.execute("BEGIN")
            connection.execute("SELECT count(*) FROM users").fetchone()
            reader.append(connection)

        @contextlib.contextmanager
        def failing() -> t.Iterator[None]:
            # jwt_created runs after the writes, just before the commit.
            with signals.jwt_created.connected_to(hold_read_lock, sender=env.app):
                yield
            for connection in reader:
                connection.close()
            reader.clear()

    else:
        env = make_app(require_backend("postgresql"))

        def terminate_backend(sender: t.Any, **kwargs: t.Any) -> None:
            pid = env.db.session.execute(sa.text("SELECT pg_backend_pid()")).scalar()
            with env.db.engine.connect() as other:
                other.execute(sa.text(f"SELECT pg_terminate_backend({int(pid)})"))

        @contextlib.contextmanager
        def failing() -> t.Iterator[None]:
            with signals.jwt_created.connected_to(terminate_backend, sender=env.app):
                yield

    env.create_user("alice")
    return env, failing


def refresh(client: t.Any, token: str) -> t.Any:
    return client.post(f"{PREFIX}/refresh", json={"refresh_token": token})


def assert_unavailable(response: t.Any) -> None:
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.get_json()["error"] == "temporarily_unavailable"
    assert int(response.headers["Retry-After"]) > 0
    assert "access_token" not in response.get_data(as_text=True)


def test_failed_commit_in_a_refresh_rolls_back_fully(broken_commit):
    env, failing = broken_commit
    env.app.config["PROPAGATE_EXCEPTIONS"] = False
    client = env.app.test_client()
    pair = tokens_for(client)
    before = env.table_rows("jwt_auth_refresh_tokens")
    with failing():
        assert_unavailable(refresh(client, pair["refresh_token"]))
    # Nothing half-written: the old token is not consumed, no new one exists.
    assert env.table_rows("jwt_auth_refresh_tokens") == before
    # The old refresh token works exactly once.
    first = refresh(client, pair["refresh_token"])
    assert first.status_code == 200, first.get_data(as_text=True)
    second = refresh(client, pair["refresh_token"])
    assert second.status_code == 401
    assert second.get_json()["error"] == "invalid_grant"


def test_failed_commit_in_a_login_issues_nothing(broken_commit):
    env, failing = broken_commit
    env.app.config["PROPAGATE_EXCEPTIONS"] = False
    client = env.app.test_client()
    before = env.row_counts()
    with failing():
        assert_unavailable(
            client.post(
                f"{PREFIX}/tokens",
                json={"username": "alice", "password": "correct horse battery staple"},
            )
        )
    assert env.row_counts() == before
    assert tokens_for(client)["access_token"]
