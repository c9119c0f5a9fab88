"""Push mode (``JWT_AUTH_REVOCATION_SYNC = "push"``, docs/sessions.rst): every
worker keeps the live revocations in memory and follows the revocation log.

Two apps on one database stand for two workers: A revokes, B must refuse within
``JWT_AUTH_REVOCATION_MAX_DELAY`` (the guarantee; the typical delay is measured
by benchmarks/revocation.py) and ask no database on a protected request. Faults:
a follower that loses its feed falls back to the database, never to accepting.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import statistics
import subprocess
import threading
import time
import typing as t
from pathlib import Path

import jwt as pyjwt
import pytest
import sqlalchemy as sa
from conftest import PASSWORD
from conftest import PREFIX
from conftest import AppEnv
from conftest import bearer
from conftest import http_call
from conftest import login
from conftest import require_backend
from conftest import tokens_for
from test_limits import _start_process
from test_limits import _stop_process

from flask_jwt_authentication import ConfigurationError
from flask_jwt_authentication.revocation import GAP_TIMEOUT
from flask_jwt_authentication.revocation import SESSION
from flask_jwt_authentication.revocation import TOKEN
from flask_jwt_authentication.revocation import USER
from flask_jwt_authentication.revocation import Entry
from flask_jwt_authentication.revocation import RevocationCache
from flask_jwt_authentication.revocation import load_push_settings
from flask_jwt_authentication.state import get_state

MakeApp = t.Callable[..., AppEnv]
MAX_DELAY = 1.0
PUSH = {"JWT_AUTH_REVOCATION_SYNC": "push", "JWT_AUTH_REVOCATION_MAX_DELAY": MAX_DELAY}


# The cache on its own ---------------------------------------------------------------


def entry(seq: int, kind: str = SESSION, value: str = "s", at: int = 0) -> Entry:
    return Entry(seq, kind, value, at or int(time.time()), int(time.time()) + 60)


def test_the_cache_answers_as_the_database_does() -> None:
    cache = RevocationCache(1.0)
    now = int(time.time())
    cache.apply(
        [
            entry(1, SESSION, "sid-1"),
            entry(2, TOKEN, "jti-2"),
            entry(3, USER, "7", at=now),
            # Expired: counted as seen, not kept.
            Entry(4, SESSION, "sid-4", now - 100, now - 1),
        ]
    )
    assert cache.status("x", "sid-1", 1, now) == "The login session has been revoked."
    assert cache.status("jti-2", "sid", 1, now) == "The token has been revoked."
    assert cache.status("x", "sid", 7, now - 1) == (
        "The user's credentials changed after the token was issued."
    )
    assert cache.status("x", "sid", 7, now) is None  # issued at not-before
    assert cache.status("x", "sid-4", 1, now) is None
    assert len(cache) == 3
    assert cache.highest == 4


def test_a_sequence_number_seen_late_is_asked_for_until_it_appears() -> None:
    """PostgreSQL and MariaDB may commit number 2 after number 3."""
    cache = RevocationCache(1.0)
    cache.apply([entry(1), entry(3, value="three")])
    assert cache.gaps == [2]
    cache.apply([entry(2, value="two")])
    assert cache.gaps == []
    assert cache.status("x", "two", 1, time.time()) is not None
    # A repeated or stale answer changes nothing.
    cache.apply([entry(1), entry(2, value="two")])
    assert cache.highest == 3


def test_gaps_are_given_up_after_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = RevocationCache(1.0)
    cache.apply([entry(1), entry(5)])
    assert cache.gaps == [2, 3, 4]
    clock = time.monotonic() + GAP_TIMEOUT + 1
    monkeypatch.setattr(time, "monotonic", lambda: clock)
    cache.apply([])
    assert cache.gaps == []


def test_a_first_load_remembers_the_numbers_just_below_the_highest() -> None:
    """The live rows come with the highest number; a missing one below it is an
    expired row, a deleted one, or one still to commit: asked for again."""
    cache = RevocationCache(1.0)
    cache.load([entry(7, value="seven"), entry(9)], highest=10)
    assert cache.highest == 10
    assert sorted(cache.gaps) == [1, 2, 3, 4, 5, 6, 8]


def test_confirmation_ages_out() -> None:
    cache = RevocationCache(0.05)
    assert not cache.is_current()
    cache.confirm(time.monotonic())
    assert cache.is_current()
    time.sleep(0.06)
    assert not cache.is_current()


def test_expired_entries_leave_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = RevocationCache(1.0)
    now = time.time()
    cache.apply([Entry(1, SESSION, "soon", int(now), int(now) + 2)])
    assert len(cache) == 1
    monkeypatch.setattr(time, "time", lambda: now + 3)
    cache.prune()
    assert len(cache) == 0


def test_a_million_revocations_fit_in_memory() -> None:
    """One access-token lifetime's worth at a million log-outs: the size is
    printed (see docs/performance.rst) and bounded."""
    import tracemalloc

    now = int(time.time())
    tracemalloc.start()
    cache = RevocationCache(1.0)
    batch = 10_000
    for start in range(0, 1_000_000, batch):
        cache.apply(
            Entry(seq, SESSION, f"{seq:036d}", now, now + 960)
            for seq in range(start + 1, start + batch + 1)
        )
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(cache) == 1_000_000
    print(f"1,000,000 revoked sessions: {size / 2**20:.0f} MiB")
    assert size < 300 * 2**20


def test_feed_entries_are_checked() -> None:
    assert Entry.from_list([1, "session", "s", 2, 3]) == Entry(1, "session", "s", 2, 3)
    for bad in (
        [1, "session", "s", 2],
        [1, "other", "s", 2, 3],
        [True, "token", "j", 1, 2],
    ):
        with pytest.raises(ValueError, match="revocation entry"):
            Entry.from_list(bad)


@pytest.mark.parametrize(
    ("config", "setting"),
    [
        ({"JWT_AUTH_REVOCATION_SYNC": "pushed"}, "JWT_AUTH_REVOCATION_SYNC"),
        ({"JWT_AUTH_REVOCATION_MAX_DELAY": 0}, "JWT_AUTH_REVOCATION_MAX_DELAY"),
        ({"JWT_AUTH_REVOCATION_MAX_DELAY": 61}, "JWT_AUTH_REVOCATION_MAX_DELAY"),
        (
            {"JWT_AUTH_REVOCATION_REDIS_URL": "localhost"},
            "JWT_AUTH_REVOCATION_REDIS_URL",
        ),
        ({"JWT_AUTH_REVOCATION_FEED_URL": "ftp://x"}, "JWT_AUTH_REVOCATION_FEED_URL"),
    ],
)
def test_misconfiguration_is_named(config: dict[str, t.Any], setting: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_push_settings(config)
    assert raised.value.setting == setting


# Two workers on one database ----------------------------------------------------------


def workers(make_app: MakeApp, url: str, **config: t.Any) -> tuple[AppEnv, AppEnv]:
    """Worker B, then worker A (which resets the tables and creates alice)."""
    settings = {**PUSH, **config}
    b = make_app(url, **settings)
    a = make_app(url, **settings)
    a.create_user("alice")
    return a, b


def refused_within(client: t.Any, token: str, bound: float) -> float:
    """Call ``/api/me`` until it answers 401; the seconds it took."""
    started = time.monotonic()
    while True:
        status = client.get("/api/me", headers=bearer(token)).status_code
        elapsed = time.monotonic() - started
        if status == 401:
            return elapsed
        assert status == 200, status
        if elapsed > bound:
            pytest.fail(f"still accepted after {elapsed:.3f} s")
        time.sleep(0.002)


def warm(client: t.Any, token: str) -> None:
    """B's first protected request starts its follower; wait until it is loaded."""
    assert client.get("/api/me", headers=bearer(token)).status_code == 200
    state = get_state(client.application)
    if state.follower is not None:
        assert state.follower.loaded.wait(5)
        deadline = time.monotonic() + 5
        while not state.revocations.is_current():  # type: ignore[union-attr]
            assert time.monotonic() < deadline
            time.sleep(0.01)


@pytest.mark.slow
def test_a_log_out_on_one_worker_is_refused_by_another(
    make_app: MakeApp, database_url: str
) -> None:
    a, b = workers(make_app, database_url)
    ca, cb = a.app.test_client(), b.app.test_client()
    pair = tokens_for(ca)
    warm(cb, pair["access_token"])
    r = ca.post(f"{PREFIX}/logout", headers=bearer(pair["access_token"]))
    assert r.status_code == 204
    # The revoking worker sees its own revocation at once.
    assert ca.get("/api/me", headers=bearer(pair["access_token"])).status_code == 401
    refused_within(cb, pair["access_token"], MAX_DELAY)


def revocations(a: AppEnv) -> dict[str, t.Callable[[t.Any, dict[str, t.Any]], None]]:
    """Every way a token stops working, done on worker A."""

    def logout(client: t.Any, pair: dict[str, t.Any]) -> None:
        r = client.post(f"{PREFIX}/logout", headers=bearer(pair["access_token"]))
        assert r.status_code == 204

    def everywhere(client: t.Any, pair: dict[str, t.Any]) -> None:
        r = client.delete(f"{PREFIX}/sessions", headers=bearer(pair["access_token"]))
        assert r.status_code == 204

    def one_session(client: t.Any, pair: dict[str, t.Any]) -> None:
        with a.app.app_context():
            user = a.jwt.load_user(1)
            sid = a.jwt.sessions(user)[0].id
            assert a.jwt.revoke_session(sid)

    def password_changed(client: t.Any, pair: dict[str, t.Any]) -> None:
        with a.app.app_context():
            a.jwt.password_changed(a.jwt.load_user(1))

    def reuse(client: t.Any, pair: dict[str, t.Any]) -> None:
        refresh = f"{PREFIX}/refresh"
        assert (
            client.post(
                refresh, json={"refresh_token": pair["refresh_token"]}
            ).status_code
            == 200
        )
        assert (
            client.post(
                refresh, json={"refresh_token": pair["refresh_token"]}
            ).status_code
            == 401
        )

    def rfc7009_access(client: t.Any, pair: dict[str, t.Any]) -> None:
        r = client.post(f"{PREFIX}/revoke", data={"token": pair["access_token"]})
        assert r.status_code == 200

    def rfc7009_refresh(client: t.Any, pair: dict[str, t.Any]) -> None:
        r = client.post(f"{PREFIX}/revoke", data={"token": pair["refresh_token"]})
        assert r.status_code == 200

    def disabled(client: t.Any, pair: dict[str, t.Any]) -> None:
        a.set_user("alice", is_active=False)
        r = client.post(
            f"{PREFIX}/refresh", json={"refresh_token": pair["refresh_token"]}
        )
        assert r.status_code == 401
        a.set_user("alice", is_active=True)

    return {
        "logout": logout,
        "everywhere": everywhere,
        "one session": one_session,
        "password changed": password_changed,
        "reuse": reuse,
        "RFC 7009 access token": rfc7009_access,
        "RFC 7009 refresh token": rfc7009_refresh,
        "disabled user": disabled,
    }


@pytest.mark.slow
def test_every_kind_of_revocation_reaches_the_other_worker(
    make_app: MakeApp, database_url: str
) -> None:
    a, b = workers(make_app, database_url)
    ca, cb = a.app.test_client(), b.app.test_client()
    for name, revoke in revocations(a).items():
        pair = tokens_for(ca)
        warm(cb, pair["access_token"])
        revoke(ca, pair)
        try:
            refused_within(cb, pair["access_token"], MAX_DELAY)
        except pytest.fail.Exception:
            pytest.fail(f"{name}: still accepted by worker B")
        time.sleep(1.0 if name == "password changed" else 0)  # a new second


def count_statements(env: AppEnv) -> t.Iterator[list[str]]:
    """The SQL statements the calling thread runs on ``env``'s engine."""
    statements: list[str] = []
    me = threading.get_ident()

    def record(conn: t.Any, cursor: t.Any, statement: str, *args: t.Any) -> None:
        if threading.get_ident() == me:
            statements.append(statement)

    with env.app.app_context():
        engine = env.db.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


statements_of = contextlib.contextmanager(count_statements)


def users_in_memory(env: AppEnv) -> None:
    """A user loader that asks no database: only the extension's work counts."""
    with env.app.app_context():
        alice = env.jwt.load_user(1)
        env.db.session.expunge(alice)
    env.jwt.user_loader(lambda uid: alice if uid == 1 else None)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["push", "database"])
def test_a_protected_request_asks_no_database_in_push_mode(
    make_app: MakeApp, database_url: str, mode: str
) -> None:
    a, b = workers(
        make_app,
        database_url,
        JWT_AUTH_REVOCATION_SYNC=mode,
        JWT_AUTH_KEYS_REFRESH_INTERVAL=1,
    )
    users_in_memory(b)
    cb = b.app.test_client()
    token = tokens_for(a.app.test_client())["access_token"]
    warm(cb, token)
    with statements_of(b) as statements:
        # Past the reload interval of the keys and settings too.
        ends = time.monotonic() + 1.5
        calls = 0
        while time.monotonic() < ends:
            assert cb.get("/api/me", headers=bearer(token)).status_code == 200
            calls += 1
    if mode == "push":
        assert statements == [], statements[:3]
    else:
        assert len(statements) >= calls


@pytest.mark.slow
def test_a_follower_that_lost_its_feed_asks_the_database(
    make_app: MakeApp, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail closed: once the follower's questions to the database fail (as
    when its connection is gone) and the bound has passed, B asks the database
    on every request; when the log answers again, B asks none."""
    a, b = workers(make_app, database_url, JWT_AUTH_REVOCATION_MAX_DELAY=0.2)
    users_in_memory(b)
    ca, cb = a.app.test_client(), b.app.test_client()
    pair, other = tokens_for(ca), tokens_for(ca)
    warm(cb, pair["access_token"])
    cache = get_state(b.app).revocations
    assert cache is not None
    follower = get_state(b.app).follower
    assert follower is not None

    def unreachable(connection: t.Any, version: t.Any) -> t.Any:
        raise sa.exc.OperationalError("SELECT", {}, Exception("gone"))

    monkeypatch.setattr(follower, "ask", unreachable)
    deadline = time.monotonic() + 5
    while cache.is_current():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert (
        ca.post(f"{PREFIX}/logout", headers=bearer(pair["access_token"])).status_code
        == 204
    )
    with statements_of(b) as statements:
        assert (
            cb.get("/api/me", headers=bearer(pair["access_token"])).status_code == 401
        )
        assert (
            cb.get("/api/me", headers=bearer(other["access_token"])).status_code == 200
        )
    assert len(statements) == 2
    monkeypatch.undo()
    deadline = time.monotonic() + 5
    while not cache.is_current():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    with statements_of(b) as statements:
        assert (
            cb.get("/api/me", headers=bearer(pair["access_token"])).status_code == 401
        )
        assert (
            cb.get("/api/me", headers=bearer(other["access_token"])).status_code == 200
        )
    assert statements == []


@pytest.mark.slow
def test_a_revocation_committed_after_a_later_one_is_not_missed(
    make_app: MakeApp, database_url: str
) -> None:
    """A transaction takes a sequence number, another takes the next one and
    commits first; the first commits later: B must still see it."""
    a, b = workers(make_app, database_url)
    ca, cb = a.app.test_client(), b.app.test_client()
    late, early = tokens_for(ca), tokens_for(ca)
    warm(cb, late["access_token"])
    with a.app.app_context():
        engine = a.db.engine
    table = get_state(a.app).tables.revocations
    late_sid = pyjwt.decode(late["access_token"], options={"verify_signature": False})[
        "sid"
    ]
    until = int(time.time()) + 900
    with engine.connect() as slow:
        transaction = slow.begin()
        slow.execute(
            sa.insert(table).values(
                kind=SESSION, value=late_sid, at=int(time.time()), expires_at=until
            )
        )
        if database_url.startswith("sqlite"):
            # One writer at a time: SQLite cannot commit out of order.
            transaction.commit()
        else:
            # The other transaction takes the next number and commits first.
            assert (
                ca.post(
                    f"{PREFIX}/logout", headers=bearer(early["access_token"])
                ).status_code
                == 204
            )
            refused_within(cb, early["access_token"], MAX_DELAY)
            assert get_state(b.app).revocations.gaps  # type: ignore[union-attr]
            time.sleep(0.2)
            transaction.commit()
    refused_within(cb, late["access_token"], MAX_DELAY)


# Faults ------------------------------------------------------------------------------


@pytest.mark.slow
def test_postgresql_connections_killed(make_app: MakeApp) -> None:
    """Every connection of the workers is terminated (as by a server restart):
    the followers reconnect and catch up; nothing revoked meanwhile is lost."""
    url = require_backend("postgresql")
    a, b = workers(make_app, url)
    ca, cb = a.app.test_client(), b.app.test_client()
    pair, after = tokens_for(ca), tokens_for(ca)
    warm(cb, pair["access_token"])
    engine = sa.create_engine(url)
    try:
        with engine.connect() as admin:
            killed = admin.execute(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar()
    finally:
        engine.dispose()
    assert killed >= 2  # B's follower and its listener at least
    assert (
        ca.post(f"{PREFIX}/logout", headers=bearer(pair["access_token"])).status_code
        == 204
    )
    refused_within(cb, pair["access_token"], MAX_DELAY)
    assert cb.get("/api/me", headers=bearer(after["access_token"])).status_code == 200
    assert (
        ca.post(f"{PREFIX}/logout", headers=bearer(after["access_token"])).status_code
        == 204
    )
    refused_within(cb, after["access_token"], MAX_DELAY)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def redis_server(port: int) -> t.Iterator[subprocess.Popen[bytes]]:
    """A Redis of the test's own, on ``port``, that the test may stop."""
    binary = shutil.which("redis-server")
    if binary is None:
        require_backend("redis")  # fails in CI, skips locally
        pytest.skip("redis-server is not installed")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
        yield process
    finally:
        process.terminate()
        process.wait(10)


@pytest.mark.slow
def test_redis_stopped_and_back(make_app: MakeApp, database_url: str) -> None:
    """Woken by Redis pub/sub; with Redis gone the database poll still confirms
    the workers current, and the revocation arrives within the bound."""
    require_backend("redis")
    port = free_port()
    with redis_server(port) as process:
        a, b = workers(
            make_app,
            database_url,
            JWT_AUTH_REVOCATION_REDIS_URL=f"redis://127.0.0.1:{port}/0",
        )
        ca, cb = a.app.test_client(), b.app.test_client()
        pairs = [tokens_for(ca) for _ in range(3)]
        warm(cb, pairs[0]["access_token"])
        assert (
            ca.post(
                f"{PREFIX}/logout", headers=bearer(pairs[0]["access_token"])
            ).status_code
            == 204
        )
        refused_within(cb, pairs[0]["access_token"], MAX_DELAY)
        process.terminate()
        process.wait(10)
        assert (
            ca.post(
                f"{PREFIX}/logout", headers=bearer(pairs[1]["access_token"])
            ).status_code
            == 204
        )
        refused_within(cb, pairs[1]["access_token"], MAX_DELAY)
    with redis_server(port):
        assert (
            ca.post(
                f"{PREFIX}/logout", headers=bearer(pairs[2]["access_token"])
            ).status_code
            == 204
        )
        refused_within(cb, pairs[2]["access_token"], MAX_DELAY)


@pytest.mark.slow
def test_a_thousand_log_outs_race_requests_on_another_worker(
    make_app: MakeApp, database_url: str
) -> None:
    """1,000 log-outs on A while B serves their tokens from two threads: once
    a log-out has been answered for longer than the bound, B accepts its token
    never again."""
    a, b = workers(make_app, database_url)
    ca = a.app.test_client()
    tokens = [login(ca).get_json()["access_token"] for _ in range(1000)]
    warm(b.app.test_client(), tokens[0])
    done: list[tuple[float, str]] = []
    stop = threading.Event()
    late: list[float] = []
    calls = [0]

    def requests() -> None:
        client = b.app.test_client()
        while not stop.is_set():
            if not done:
                time.sleep(0.001)
                continue
            at, token = random.choice(done)
            status = client.get("/api/me", headers=bearer(token)).status_code
            calls[0] += 1
            # Leave the log-outs their share of the interpreter.
            time.sleep(0.002)
            age = time.monotonic() - at
            if status == 200 and age > MAX_DELAY:
                late.append(age)

    threads = [threading.Thread(target=requests) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for token in tokens:
            assert ca.post(f"{PREFIX}/logout", headers=bearer(token)).status_code == 204
            done.append((time.monotonic(), token))
        time.sleep(MAX_DELAY + 0.2)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert calls[0] > 100
    assert late == []
    client = b.app.test_client()
    assert all(
        client.get("/api/me", headers=bearer(token)).status_code == 401
        for token in tokens
    )


# Worker processes ----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_worker_processes_refuse_a_log_out_of_another(
    make_app: MakeApp, tmp_path: Path, backend: str
) -> None:
    """Two processes of the app (tests/serve_app.py) on one database: each of 30
    log-outs on one is refused by the other within the bound (the delays are
    printed; benchmarks/revocation.py measures them over more)."""
    url = (
        f"sqlite:///{tmp_path / 'workers.db'}"
        if backend == "sqlite"
        else require_backend("postgresql")
    )
    processes = []
    with open(tmp_path / "servers.log", "w+b") as log:
        try:
            ports = []
            for _ in range(2):  # each (re)creates the tables when it starts
                proc, port = _start_process(url, PUSH, log)
                processes.append(proc)
                ports.append(port)
            make_app(url).create_user("alice")
            a, b = ports
            delays = []
            for _ in range(30):
                status, body = http_call(
                    a,
                    "POST",
                    f"{PREFIX}/tokens",
                    body={"username": "alice", "password": PASSWORD},
                )
                assert status == 200, body
                token = body["access_token"]
                assert http_call(b, "GET", "/api/me", token=token)[0] == 200
                assert http_call(a, "POST", f"{PREFIX}/logout", token=token)[0] == 204
                done = time.monotonic()
                while http_call(b, "GET", "/api/me", token=token)[0] != 401:
                    assert time.monotonic() - done <= MAX_DELAY, "still accepted"
                delays.append(time.monotonic() - done)
        finally:
            for proc in processes:
                _stop_process(proc)
    delays.sort()
    print(
        f"{backend}: refused after median {statistics.median(delays) * 1000:.1f} ms,"
        f" max {delays[-1] * 1000:.1f} ms"
    )
