"""``flask jwt cleanup`` while traffic flows (docs/cli.rst: "safe to run from cron
while traffic flows"), on a real threaded server, on every database backend.

Background threads keep using valid tokens (each request must get 200, each
refresh 200), logged-out access tokens (each must get 401) and replayed refresh
tokens (each replay must get 401 and end its session), while the main thread runs
the cleanup over and over, with batches of 50, over a database holding thousands
of expired rows (inserted directly, expired in the past, topped up every round),
and each round two cleanups at once. No revoked token may pass, no valid token
fail, no replay go unnoticed, no answer be a 5xx ("database is locked" must never
reach a client); every cleanup exits 0; at the end every expired row is gone and
every live one is still there.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
import time
import typing as t
import uuid

import pytest
import sqlalchemy as sa
from conftest import PASSWORD
from conftest import PREFIX
from conftest import AppEnv
from conftest import http_call

from flask_jwt_authentication.store import hash_refresh_token
from flask_jwt_authentication.store import new_refresh_token

pytestmark = pytest.mark.slow

#: Seconds one HTTP request may take.
REQUEST_TIMEOUT = 15.0
#: Seconds of traffic while the cleanups run (after the initial fill).
TRAFFIC_SECONDS = 8.0
#: Upper bound on cleanup rounds, so the loop is bounded in count as well.
MAX_ROUNDS = 40
#: Expired rows inserted before the traffic starts, and per round after.
INITIAL_EXPIRED = 2000
TOP_UP = 300
VALID_WORKERS = 3
LOGGED_OUT_TOKENS = 5


@dataclasses.dataclass
class Client:
    port: int

    def call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, t.Any] | None = None,
        token: str | None = None,
    ) -> tuple[int, t.Any]:
        """One request on a fresh connection; the status and the JSON body."""
        return http_call(
            self.port, method, path, body=body, token=token, timeout=REQUEST_TIMEOUT
        )

    def login(self, username: str) -> dict[str, t.Any]:
        status, body = self.call(
            "POST",
            f"{PREFIX}/tokens",
            body={"username": username, "password": PASSWORD},
        )
        assert status == 200, body
        return t.cast(dict[str, t.Any], body)

    def refresh(self, refresh_token: str) -> tuple[int, t.Any]:
        return self.call(
            "POST", f"{PREFIX}/refresh", body={"refresh_token": refresh_token}
        )

    def me(self, access_token: str) -> int:
        return self.call("GET", "/api/me", token=access_token)[0]


@dataclasses.dataclass
class Outcomes:
    """What the workers saw; failures are described, not raised, in threads."""

    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    failures: list[str] = dataclasses.field(default_factory=list)
    counts: dict[str, int] = dataclasses.field(default_factory=dict)
    #: Session ids that must survive the cleanups.
    live_sessions: set[str] = dataclasses.field(default_factory=set)

    def fail(self, text: str) -> None:
        with self.lock:
            self.failures.append(text)

    def count(self, name: str) -> None:
        with self.lock:
            self.counts[name] = self.counts.get(name, 0) + 1

    def keep(self, sid: str) -> None:
        with self.lock:
            self.live_sessions.add(sid)


def sid_of(pair: dict[str, t.Any]) -> str:
    import base64

    segment = pair["access_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return t.cast(str, claims["sid"])


def guarded(
    name: str, outcomes: Outcomes, body: t.Callable[[], None]
) -> t.Callable[[], None]:
    """Run ``body`` and turn any exception (a timeout, a reset) into a failure."""

    def run() -> None:
        try:
            body()
        except Exception as e:
            outcomes.fail(f"{name}: {type(e).__name__}: {e}")

    return run


def valid_worker(
    client: Client, outcomes: Outcomes, username: str, stop: threading.Event
) -> None:
    pair = client.login(username)
    outcomes.keep(sid_of(pair))
    for _ in range(10_000):
        if stop.is_set():
            return
        status = client.me(pair["access_token"])
        outcomes.count("valid access")
        if status != 200:
            outcomes.fail(f"valid access token got {status}")
            return
        status, body = client.refresh(pair["refresh_token"])
        outcomes.count("valid refresh")
        if status != 200:
            outcomes.fail(f"valid refresh got {status}: {body}")
            return
        pair = body


def revoked_worker(
    client: Client, outcomes: Outcomes, tokens: list[str], stop: threading.Event
) -> None:
    for _ in range(10_000):
        if stop.is_set():
            return
        for token in tokens:
            status = client.me(token)
            outcomes.count("revoked access")
            if status != 401:
                outcomes.fail(f"logged-out access token got {status}")
                return


def replay_worker(
    client: Client, outcomes: Outcomes, username: str, stop: threading.Event
) -> None:
    for _ in range(10_000):
        if stop.is_set():
            return
        first = client.login(username)
        status, second = client.refresh(first["refresh_token"])
        if status != 200:
            outcomes.fail(f"first refresh of a replay session got {status}: {second}")
            return
        status, body = client.refresh(first["refresh_token"])
        outcomes.count("replay")
        if status != 401 or body.get("error") != "invalid_grant":
            outcomes.fail(f"replayed refresh token got {status}: {body}")
            return
        # The replay ended the session: its newest tokens fail too.
        status, body = client.refresh(second["refresh_token"])
        if status != 401:
            outcomes.fail(f"refresh after a replay got {status}: {body}")
            return
        status = client.me(second["access_token"])
        if status != 401:
            outcomes.fail(f"access token after a replay got {status}")
            return
        outcomes.keep(sid_of(second))


def insert_expired(env: AppEnv, count: int, now: int) -> None:
    """``count`` expired sessions (a third of them revoked), two refresh tokens
    each (one consumed), and ``count`` expired revoked jtis, in one transaction."""
    tables = env.db.metadata.tables
    sessions, rows, jtis = [], [], []
    for i in range(count):
        sid = uuid.uuid4()
        created = now - 10_000 - i
        expires = now - 60 - (i % 1000)
        sessions.append(
            {
                "id": sid,
                "user_id": "1",
                "created_at": created,
                "last_used_at": created + 10,
                "expires_at": expires,
                "revoked_at": created + 20 if i % 3 == 0 else None,
                "revoke_reason": "reuse" if i % 3 == 0 else None,
                "client_ip": "192.0.2.1",
                "user_agent": "expired",
            }
        )
        first = hash_refresh_token(new_refresh_token())
        rows.append(
            {
                "token_hash": first,
                "session_id": sid,
                "issued_at": created,
                "expires_at": expires - 10,
                "consumed_at": created + 10,
                "parent_hash": None,
            }
        )
        rows.append(
            {
                "token_hash": hash_refresh_token(new_refresh_token()),
                "session_id": sid,
                "issued_at": created + 10,
                "expires_at": expires,
                "consumed_at": None,
                "parent_hash": first,
            }
        )
        jtis.append(
            {"jti": uuid.uuid4().hex, "revoked_at": created, "expires_at": expires}
        )
    with env.app.app_context():
        session = env.db.session
        session.execute(sa.insert(tables["jwt_auth_sessions"]), sessions)
        session.execute(sa.insert(tables["jwt_auth_refresh_tokens"]), rows)
        session.execute(sa.insert(tables["jwt_auth_revoked_tokens"]), jtis)
        session.commit()


def run_cleanup(env: AppEnv) -> t.Any:
    return env.app.test_cli_runner().invoke(
        args=["jwt", "cleanup", "--batch-size", "50"]
    )


def two_cleanups(env: AppEnv) -> list[t.Any]:
    """Two cleanups at once, in two threads.

    Click's runner swaps ``sys.stdout`` and friends for the duration of a command;
    two at once restore them in the wrong order, so they are restored here, and
    each result is judged by its exit code (the output may be the other's).
    """
    saved = sys.stdin, sys.stdout, sys.stderr
    results: list[t.Any] = [None, None]
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            results[i] = run_cleanup(env)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads), "cleanup hung"
    return results


def expired_counts(env: AppEnv, threshold: int) -> dict[str, int]:
    with env.app.app_context():
        return {
            name: env.db.session.execute(
                sa.select(sa.func.count())
                .select_from(env.db.metadata.tables[name])
                .where(env.db.metadata.tables[name].c.expires_at <= threshold)
            ).scalar_one()
            for name in (
                "jwt_auth_sessions",
                "jwt_auth_refresh_tokens",
                "jwt_auth_revoked_tokens",
            )
        }


def test_cleanup_under_traffic(
    make_app: t.Callable[..., AppEnv],
    database_url: str,
    serve: t.Callable[[AppEnv], int],
) -> None:
    env = make_app(database_url)
    for name in ("valid0", "valid1", "valid2", "replayer", "gone"):
        env.create_user(name)
    client = Client(serve(env))
    outcomes = Outcomes()

    # Logged-out access tokens; their revoked jti rows are live.
    logged_out = []
    for _ in range(LOGGED_OUT_TOKENS):
        pair = client.login("gone")
        status, _ = client.call("POST", f"{PREFIX}/logout", token=pair["access_token"])
        assert status == 204
        logged_out.append(pair["access_token"])
        outcomes.keep(sid_of(pair))
    with env.app.app_context():
        live_jtis = set(
            env.db.session.execute(
                sa.select(env.db.metadata.tables["jwt_auth_revoked_tokens"].c.jti)
            ).scalars()
        )
    assert len(live_jtis) == LOGGED_OUT_TOKENS

    start = int(time.time())
    # Every expired row expires before this; every live one long after it.
    threshold = start
    insert_expired(env, INITIAL_EXPIRED, start)
    assert expired_counts(env, threshold) == {
        "jwt_auth_sessions": INITIAL_EXPIRED,
        "jwt_auth_refresh_tokens": 2 * INITIAL_EXPIRED,
        "jwt_auth_revoked_tokens": INITIAL_EXPIRED,
    }

    stop = threading.Event()
    workers = [
        threading.Thread(
            target=guarded(
                f"valid{i}",
                outcomes,
                lambda i=i: valid_worker(client, outcomes, f"valid{i}", stop),
            )
        )
        for i in range(VALID_WORKERS)
    ]
    workers.append(
        threading.Thread(
            target=guarded(
                "revoked",
                outcomes,
                lambda: revoked_worker(client, outcomes, logged_out, stop),
            )
        )
    )
    workers.append(
        threading.Thread(
            target=guarded(
                "replay",
                outcomes,
                lambda: replay_worker(client, outcomes, "replayer", stop),
            )
        )
    )
    results: list[t.Any] = []
    try:
        for worker in workers:
            worker.start()
        deadline = time.monotonic() + TRAFFIC_SECONDS
        rounds = 0
        while rounds < MAX_ROUNDS and (rounds < 3 or time.monotonic() < deadline):
            results.extend(two_cleanups(env))
            results.append(run_cleanup(env))
            if outcomes.failures:
                break
            insert_expired(env, TOP_UP, int(time.time()))
            rounds += 1
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=3 * REQUEST_TIMEOUT)
    assert not any(worker.is_alive() for worker in workers), "a worker hung"
    # The last top-up, then one last cleanup with the traffic stopped.
    results.append(run_cleanup(env))

    assert outcomes.failures == []
    for result in results:
        assert result.exit_code == 0, (result.output, result.exception)
        assert result.exception is None
    assert "Deleted" in results[-1].output
    assert rounds >= 3
    for name in ("valid access", "valid refresh", "revoked access", "replay"):
        assert outcomes.counts.get(name, 0) > 0, outcomes.counts

    # Every expired row is gone, every live one remains.
    assert expired_counts(env, threshold) == dict.fromkeys(
        ("jwt_auth_sessions", "jwt_auth_refresh_tokens", "jwt_auth_revoked_tokens"), 0
    )
    assert expired_counts(env, int(time.time())) == expired_counts(env, threshold)
    with env.app.app_context():
        tables = env.db.metadata.tables
        session_ids = {
            str(sid)
            for sid in env.db.session.execute(
                sa.select(tables["jwt_auth_sessions"].c.id)
            ).scalars()
        }
        jtis = set(
            env.db.session.execute(
                sa.select(tables["jwt_auth_revoked_tokens"].c.jti)
            ).scalars()
        )
        orphans = env.db.session.execute(
            sa.select(sa.func.count())
            .select_from(tables["jwt_auth_refresh_tokens"])
            .where(
                tables["jwt_auth_refresh_tokens"].c.session_id.not_in(
                    sa.select(tables["jwt_auth_sessions"].c.id)
                )
            )
        ).scalar_one()
    assert outcomes.live_sessions <= session_ids
    assert live_jtis <= jtis
    assert orphans == 0
    # The logged-out tokens still fail after the cleanups, the valid sessions work.
    for token in logged_out:
        assert client.me(token) == 401
