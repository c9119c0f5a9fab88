"""Concurrent refreshes of one refresh token over real HTTP: exactly one wins.

docs/sessions.rst: "Two concurrent refreshes with one token have exactly one winner",
and a
consumed refresh token presented again revokes its whole family. Every round logs in,
then releases many threads at once, each POSTing the same refresh token to a real
threaded server, on every database backend.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import threading
import time
import typing as t

import pytest
import sqlalchemy as sa
from conftest import PASSWORD
from conftest import PREFIX
from conftest import AppEnv

from flask_jwt_authentication.store import hash_refresh_token

ROUNDS = 50
THREADS = 16
#: Seconds a single request, the barrier and a thread join may take.
REQUEST_TIMEOUT = 15.0
#: Seconds the whole loop may take before the test gives up (bounded in time too).
TOTAL_BUDGET = 240.0


@dataclasses.dataclass
class LiveServer:
    env: AppEnv
    host: str
    port: int

    def post(self, path: str, body: dict[str, t.Any]) -> tuple[int, t.Any]:
        """POST JSON on a fresh connection; returns the status and the JSON body."""
        conn = self.connect()
        try:
            return self.send(conn, path, body)
        finally:
            conn.close()

    def connect(self) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=REQUEST_TIMEOUT)
        conn.connect()
        return conn

    @staticmethod
    def send(
        conn: http.client.HTTPConnection, path: str, body: dict[str, t.Any]
    ) -> tuple[int, t.Any]:
        conn.request(
            "POST",
            path,
            body=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Connection": "close"},
        )
        response = conn.getresponse()
        data = response.read()
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = data.decode("utf-8", "replace")
        return response.status, parsed


def _serve_alice(
    make_app: t.Callable[..., AppEnv],
    database_url: str,
    serve: t.Callable[[AppEnv], int],
    **config: t.Any,
) -> LiveServer:
    """The test app with ``alice`` on a threaded server on 127.0.0.1."""
    # A pool that holds every racing request's connection: with the default one
    # (5 + 10 overflow) each burst opens and closes ten connections, which triples
    # the run time on MariaDB and spreads the requests out instead of racing them.
    engine_options = (
        {"connect_args": {"timeout": 30}}  # the writers queue for SQLite's lock
        if database_url.startswith("sqlite")
        else {"pool_pre_ping": True, "pool_size": THREADS + 2}
    )
    # 15 of every 16 refreshes fail: the per-address flood limit must stay off here.
    env = make_app(
        database_url,
        RATELIMIT_ENABLED=False,
        SQLALCHEMY_ENGINE_OPTIONS=engine_options,
        **config,
    )
    env.create_user("alice")
    return LiveServer(env=env, host="127.0.0.1", port=serve(env))


@pytest.fixture
def live_server(
    make_app: t.Callable[..., AppEnv],
    database_url: str,
    serve: t.Callable[[AppEnv], int],
) -> LiveServer:
    # Keys reload during the bursts: a reload must not stall the requests.
    return _serve_alice(make_app, database_url, serve, JWT_AUTH_KEYS_REFRESH_INTERVAL=1)


def _race(server: LiveServer, refresh_token: str) -> list[tuple[int, t.Any]]:
    """POST ``refresh_token`` from ``THREADS`` threads released together."""
    barrier = threading.Barrier(THREADS, timeout=REQUEST_TIMEOUT)
    results: list[tuple[int, t.Any] | None] = [None] * THREADS

    def worker(index: int) -> None:
        # Any failure is recorded as a result, so no thread dies with an exception.
        conn = None
        try:
            conn = server.connect()
            barrier.wait()
            results[index] = server.send(
                conn, f"{PREFIX}/refresh", {"refresh_token": refresh_token}
            )
        except Exception as e:
            barrier.abort()
            results[index] = (-1, f"{type(e).__name__}: {e}")
        finally:
            if conn is not None:
                conn.close()

    threads = [
        threading.Thread(target=worker, args=(i,), name=f"race-{i}", daemon=True)
        for i in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 2 * REQUEST_TIMEOUT
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    stuck = [thread.name for thread in threads if thread.is_alive()]
    assert not stuck, f"threads still running: {stuck}"
    return [r if r is not None else (-1, "no result") for r in results]


def _family(env: AppEnv, old_token: str) -> tuple[t.Any, list[t.Any], t.Any]:
    """The presented token's row, all its session's token rows, and the session."""
    with env.app.app_context():
        metadata = env.db.metadata
        rt = metadata.tables["jwt_auth_refresh_tokens"]
        sessions = metadata.tables["jwt_auth_sessions"]
        session = env.db.session
        old = session.execute(
            sa.select(rt).where(rt.c.token_hash == hash_refresh_token(old_token))
        ).one()
        family = list(
            session.execute(sa.select(rt).where(rt.c.session_id == old.session_id))
        )
        login_session = session.execute(
            sa.select(sessions).where(sessions.c.id == old.session_id)
        ).one()
        session.rollback()
        return old, family, login_session


@pytest.mark.slow
def test_concurrent_refresh_exactly_one_wins(live_server: LiveServer) -> None:
    server, env = live_server, live_server.env
    with env.app.app_context():
        backend = env.db.engine.url.get_backend_name()
    started = time.monotonic()
    winners = 0
    rounds = 0
    for round_no in range(ROUNDS):
        assert time.monotonic() - started < TOTAL_BUDGET, (
            f"{backend}: only {round_no} rounds in {TOTAL_BUDGET} s"
        )
        status, pair = server.post(
            f"{PREFIX}/tokens", {"username": "alice", "password": PASSWORD}
        )
        assert status == 200, (round_no, status, pair)
        old_token = pair["refresh_token"]

        results = _race(server, old_token)

        statuses = sorted(status for status, _ in results)
        assert statuses == [200] + [401] * (THREADS - 1), (round_no, results)
        for status, body in results:
            if status == 401:
                assert isinstance(body, dict), (round_no, body)
                assert body["error"] == "invalid_grant", (round_no, body)
        (winner,) = [body for status, body in results if status == 200]
        assert winner["refresh_token"] != old_token
        winners += 1

        # The presented token is consumed; the family holds exactly one live token,
        # the winner's. The losers presented a consumed token: the family is revoked.
        old, family, login_session = _family(env, old_token)
        assert old.consumed_at is not None, round_no
        live = [row for row in family if row.consumed_at is None]
        assert len(family) == 2, (round_no, family)
        assert [row.token_hash for row in live] == [
            hash_refresh_token(winner["refresh_token"])
        ], (round_no, family)
        why = (round_no, login_session, family, results)
        assert login_session.revoked_at is not None, why
        assert login_session.revoke_reason == "reuse", why
        rounds += 1

    elapsed = time.monotonic() - started
    print(
        f"\n[race] {backend}: {rounds} rounds x {THREADS} threads, "
        f"{winners} winners, {elapsed:.1f} s"
    )
    assert rounds == winners == ROUNDS


@pytest.fixture
def grace_server(
    make_app: t.Callable[..., AppEnv],
    database_url: str,
    serve: t.Callable[[AppEnv], int],
) -> LiveServer:
    """As ``live_server``, with a grace window of a minute."""
    return _serve_alice(make_app, database_url, serve, JWT_AUTH_REFRESH_GRACE_PERIOD=60)


GRACE_ROUNDS = 10


@pytest.mark.slow
def test_concurrent_re_presentations_in_the_grace_window_have_one_winner(
    grace_server: LiveServer,
) -> None:
    """A consumed token raced by 16 clients within the window: one gets a new
    pair, the 15 others are reuse and end the session (no fork of 16 live
    branches)."""
    server, env = grace_server, grace_server.env
    for round_no in range(GRACE_ROUNDS):
        status, pair = server.post(
            f"{PREFIX}/tokens", {"username": "alice", "password": PASSWORD}
        )
        assert status == 200, (round_no, status, pair)
        consumed = pair["refresh_token"]
        status, successor = server.post(
            f"{PREFIX}/refresh", {"refresh_token": consumed}
        )
        assert status == 200, (round_no, successor)

        results = _race(server, consumed)

        statuses = sorted(status for status, _ in results)
        assert statuses == [200] + [401] * (THREADS - 1), (round_no, results)
        old, family, login_session = _family(env, consumed)
        assert old.grace_used_at is not None, round_no
        # The login's token, its successor and the one grace branch: no more.
        assert len(family) == 3, (round_no, family)
        assert login_session.revoke_reason == "reuse", (round_no, results)
