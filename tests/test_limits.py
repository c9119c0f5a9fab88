"""Brute-force limits on the token endpoints (docs/flood.rst).

Failed log-ins are limited per username and address (``JWT_AUTH_FLOOD_USER_LIMIT``,
5 per 5 minutes), per client address (``JWT_AUTH_FLOOD_IP_LIMIT``, 50 per hour) and
per account (``JWT_AUTH_FLOOD_ACCOUNT_LIMIT``, 100 per hour), failed refreshes per
address (``JWT_AUTH_FLOOD_REFRESH_LIMIT``), on Flask-Limiter's storage settings.
tests/test_flood_attacks.py performs the attacks these limits answer. ``build_app``
turns the limits off for the other test files; every test here turns them on.

Redis: the tests that share one Redis between processes read its URL from
``TEST_REDIS_URL`` (``.ci/run`` sets it); without it they skip locally and fail in CI.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
import typing as t
import uuid
from pathlib import Path

import pytest
import time_machine
from conftest import HASH_METHOD
from conftest import PASSWORD
from conftest import PREFIX
from conftest import AppEnv
from conftest import build_app
from conftest import require_backend
from werkzeug.middleware.proxy_fix import ProxyFix

from flask_jwt_authentication.errors import ConfigurationError
from flask_jwt_authentication.errors import TooManyRequests
from flask_jwt_authentication.limits import FloodControl
from flask_jwt_authentication.passwords import werkzeug_verifier

#: Seconds a request, a barrier wait, a thread join or a process start may take.
TIMEOUT = 15.0
#: A port nothing listens on: the rate-limit storage is "down".
DEAD_REDIS = "redis://127.0.0.1:1"
SERVE_APP = Path(__file__).parent / "serve_app.py"

MakeApp = t.Callable[..., AppEnv]


# Helpers ------------------------------------------------------------------------------


@pytest.fixture
def redis_url() -> str:
    """The test Redis (``key_prefix`` cleans up after the tests that use it)."""
    return require_backend("redis")


@pytest.fixture
def key_prefix(request: pytest.FixtureRequest) -> t.Iterator[str]:
    """A ``RATELIMIT_KEY_PREFIX`` of this test run alone, so that parallel and
    earlier runs sharing the Redis count nothing of ours; its keys are deleted at
    the end when a Redis is configured."""
    prefix = f"test-limits-{uuid.uuid4().hex}:"
    yield prefix
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        import redis

        client = redis.Redis.from_url(url, socket_timeout=TIMEOUT)
        try:
            keys = list(client.scan_iter(match=f"*{prefix}*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


@dataclasses.dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def json(self) -> t.Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def http_post(
    port: int, path: str, body: t.Any, conn: http.client.HTTPConnection | None = None
) -> Reply:
    """POST ``body`` as JSON to 127.0.0.1:``port`` (on ``conn`` if given, which
    the caller then closes); a fresh connection otherwise."""
    own = conn is None
    if conn is None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        conn.request(
            "POST",
            path,
            body=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Connection": "close"},
        )
        response = conn.getresponse()
        data = response.read()
        return Reply(response.status, response.getheaders(), data)
    finally:
        if own:
            conn.close()


def http_login(port: int, username: str, password: str) -> Reply:
    return http_post(
        port, f"{PREFIX}/tokens", {"username": username, "password": password}
    )


def assert_too_many(status: int, body: t.Any, retry_after: str | None) -> None:
    """A 429 with the contract's body and a sane ``Retry-After``."""
    assert status == 429, body
    assert body["error"] == "too_many_requests"
    assert body["error_description"]
    assert retry_after is not None
    assert 1 <= int(retry_after) <= 3601


def assert_reply_too_many(reply: Reply) -> None:
    assert_too_many(reply.status, reply.json(), reply.header("Retry-After"))


def login(
    client: t.Any,
    username: str = "alice",
    password: str = PASSWORD,
    **kwargs: t.Any,
) -> t.Any:
    """POST the log-in endpoint with the test client (``environ_base=`` etc.)."""
    return client.post(
        f"{PREFIX}/tokens", json={"username": username, "password": password}, **kwargs
    )


def assert_429(response: t.Any) -> None:
    assert_too_many(
        response.status_code, response.get_json(), response.headers.get("Retry-After")
    )


def assert_401(response: t.Any) -> None:
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.get_json()["error"] == "invalid_grant"


class CountingVerifier:
    """The default verifier (Werkzeug's ``check_password_hash``), counted.

    Only verifications that computed a hash are counted: a hash the verifier
    cannot read raises ``ValueError`` first, and the extension then verifies the
    dummy hash in its place, which is counted. Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.hashes: list[str] = []

    def __call__(self, stored_hash: str, password: str) -> bool:
        result = werkzeug_verifier(stored_hash, password)
        with self._lock:
            self.hashes.append(stored_hash)
        return result

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.hashes)

    def reset(self) -> None:
        with self._lock:
            self.hashes.clear()


def count_verifications(env: AppEnv) -> CountingVerifier:
    """Register a counting verifier on ``env`` (same dummy hash as build_app's)."""
    verifier = CountingVerifier()
    env.jwt.password_verifier(dummy_hash=env.jwt.dummy_password_hash)(verifier)
    return verifier


def limited_app(make_app: MakeApp, key_prefix: str, **config: t.Any) -> AppEnv:
    """An app with the limits on (a unique key prefix) and the user ``alice``."""
    env = make_app(RATELIMIT_ENABLED=True, RATELIMIT_KEY_PREFIX=key_prefix, **config)
    env.create_user("alice")
    return env


# Several processes sharing one Redis --------------------------------------------------


@dataclasses.dataclass
class Cluster:
    """App processes serving one database and one Redis; ``env`` is this process's
    view of the database (to create users)."""

    env: AppEnv
    ports: list[int]


def _start_process(
    database_url: str, config: dict[str, t.Any], log: t.IO[bytes]
) -> tuple[subprocess.Popen[bytes], int]:
    proc = subprocess.Popen(
        [sys.executable, str(SERVE_APP), database_url, json.dumps(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        cwd=SERVE_APP.parent,
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], TIMEOUT)
    line = proc.stdout.readline() if ready else b""
    if not line.strip().isdigit():
        _stop_process(proc)
        log.flush()
        log.seek(0)
        raise AssertionError(
            f"the app process did not start: {line!r}\n{log.read().decode()}"
        )
    return proc, int(line)


def _stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.stdin is not None:
        proc.stdin.close()  # serve_app.py shuts down when its stdin closes
    try:
        proc.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=TIMEOUT)
    if proc.stdout is not None:
        proc.stdout.close()


@pytest.fixture
def cluster(
    make_app: MakeApp, redis_url: str, key_prefix: str, tmp_path: Path
) -> t.Iterator[Cluster]:
    """Two app processes on 127.0.0.1 sharing one SQLite file and the Redis, with
    the default limits on under this test's key prefix."""
    database_url = f"sqlite:///{tmp_path / 'shared.db'}"
    env = make_app(database_url)
    config = {
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_STORAGE_URI": redis_url,
        "RATELIMIT_KEY_PREFIX": key_prefix,
    }
    processes: list[subprocess.Popen[bytes]] = []
    ports: list[int] = []
    with open(tmp_path / "servers.log", "w+b") as log:
        try:
            # One after the other: each (re)creates the tables when it starts.
            for _ in range(2):
                proc, port = _start_process(database_url, config, log)
                processes.append(proc)
                ports.append(port)
            # Users only now, after the last process created the tables.
            env.create_user("alice")
            env.create_user("bob")
            yield Cluster(env=env, ports=ports)
        finally:
            for proc in processes:
                _stop_process(proc)


@pytest.mark.slow
def test_username_limit_holds_across_processes(cluster: Cluster) -> None:
    a, b = cluster.ports
    for i in range(5):
        reply = http_login(cluster.ports[i % 2], "alice", f"wrong-{i}")
        assert reply.status == 401, reply.body
        assert reply.json()["error"] == "invalid_grant"
    # The 6th failure is refused by both processes, and so is the right password
    # until the window ends.
    for port in (a, b):
        assert_reply_too_many(http_login(port, "alice", "wrong-6"))
        assert_reply_too_many(http_login(port, "alice", PASSWORD))
    # Another account from the same address is not locked.
    for port in (a, b):
        assert http_login(port, "bob", PASSWORD).status == 200


@pytest.mark.slow
def test_address_limit_holds_across_processes(cluster: Cluster) -> None:
    """50 failures from 127.0.0.1, spread over both processes and over usernames
    (each below its own limit), with successful log-ins in between: the 51st is
    refused everywhere, as the successes neither counted nor reset anything."""
    a, b = cluster.ports
    for i in range(50):
        reply = http_login(cluster.ports[i % 2], f"nobody-{i}", "wrong")
        assert reply.status == 401, (i, reply.body)
        if i % 10 == 4:
            success = http_login(cluster.ports[(i + 1) % 2], "alice", PASSWORD)
            assert success.status == 200, (i, success.body)
    for port in (a, b):
        assert_reply_too_many(http_login(port, "nobody-51", "wrong"))
        # The address is refused whatever it sends, right passwords included.
        assert_reply_too_many(http_login(port, "bob", PASSWORD))


# Concurrent guesses -------------------------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
def storage_uri(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    return require_backend("redis")


@pytest.mark.slow
def test_concurrent_guesses_verify_exactly_the_limit(
    make_app: MakeApp,
    key_prefix: str,
    storage_uri: str,
    serve: t.Callable[[AppEnv], int],
) -> None:
    """20 wrong guesses for one username released together: 5 are verified (401),
    15 refused (429) before any hash is computed."""
    env = limited_app(make_app, key_prefix, RATELIMIT_STORAGE_URI=storage_uri)
    verifier = count_verifications(env)
    port = serve(env)
    threads_count = 20
    barrier = threading.Barrier(threads_count, timeout=TIMEOUT)
    results: list[Reply | str | None] = [None] * threads_count

    def guess(index: int) -> None:
        # Every outcome, errors included, is recorded; no thread dies raising.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        try:
            conn.connect()
            barrier.wait()
            results[index] = http_login_on(conn, port, f"guess-{index}")
        except Exception as e:
            barrier.abort()
            results[index] = f"{type(e).__name__}: {e}"
        finally:
            conn.close()

    threads = [
        threading.Thread(target=guess, args=(i,), name=f"guess-{i}", daemon=True)
        for i in range(threads_count)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 2 * TIMEOUT
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    assert not [thread.name for thread in threads if thread.is_alive()]

    errors = [r for r in results if not isinstance(r, Reply)]
    assert not errors, errors
    replies = t.cast(list[Reply], results)
    statuses = sorted(r.status for r in replies)
    assert statuses == [401] * 5 + [429] * 15
    for reply in replies:
        if reply.status == 429:
            assert_reply_too_many(reply)
        else:
            assert reply.json()["error"] == "invalid_grant"
    assert verifier.count == 5


def http_login_on(conn: http.client.HTTPConnection, port: int, password: str) -> Reply:
    return http_post(
        port,
        f"{PREFIX}/tokens",
        {"username": "alice", "password": password},
        conn=conn,
    )


# The enumeration guard ----------------------------------------------------------------


def test_each_failure_class_costs_one_verification_and_answers_alike(
    make_app: MakeApp, key_prefix: str, serve: t.Callable[[AppEnv], int]
) -> None:
    """Unknown user, wrong password, disabled user, unusable hash (none, or not a
    hash): one hash verification each, and the same answer byte for byte."""
    env = limited_app(make_app, key_prefix)
    env.create_user("disabled", is_active=False)
    env.create_user("nohash")
    env.set_user("nohash", password_hash=None)
    env.create_user("garbage")
    env.set_user("garbage", password_hash="not-a-hash")
    verifier = count_verifications(env)
    port = serve(env)
    cases = {
        "unknown user": ("nobody", PASSWORD),
        "wrong password": ("alice", "wrong password"),
        "disabled user": ("disabled", PASSWORD),
        "no hash": ("nohash", PASSWORD),
        "not a hash": ("garbage", PASSWORD),
    }
    replies: dict[str, Reply] = {}
    for case, (username, password) in cases.items():
        verifier.reset()
        replies[case] = http_login(port, username, password)
        assert verifier.count == 1, (case, verifier.hashes)
        # A verification that computed a hash: the user's, or the dummy one.
        assert verifier.hashes[0].startswith(HASH_METHOD + "$"), case

    def comparable(reply: Reply) -> tuple[int, bytes, list[tuple[str, str]]]:
        headers = [(k, v) for k, v in reply.headers if k.lower() != "date"]
        return reply.status, reply.body, headers

    reference = comparable(replies["wrong password"])
    assert reference[0] == 401
    assert json.loads(reference[1])["error"] == "invalid_grant"
    for case, reply in replies.items():
        assert comparable(reply) == reference, case


# Over the limit -----------------------------------------------------------------------


def test_over_the_username_limit_no_password_is_verified(
    make_app: MakeApp, key_prefix: str
) -> None:
    env = limited_app(make_app, key_prefix)
    verifier = count_verifications(env)
    client = env.app.test_client()
    for _ in range(5):
        assert_401(login(client, password="wrong"))
    assert verifier.count == 5
    verifier.reset()
    before = env.row_counts()
    for password in ("wrong", PASSWORD):
        response = login(client, password=password)
        assert_429(response)
        assert response.headers["Content-Type"] == "application/json"
        assert int(response.headers["Retry-After"]) <= 301
        assert "access_token" not in response.get_json()
    assert verifier.count == 0
    assert env.row_counts() == before


def test_username_variants_share_one_counter(
    make_app: MakeApp, key_prefix: str
) -> None:
    env = limited_app(make_app, key_prefix)
    env.create_user("bob")
    client = env.app.test_client()
    variants = [
        " Alice ",
        "ALICE",
        "\uff41\uff4c\uff49\uff43\uff45",
        "\uff21lice",
        "alice",
    ]
    for username in variants:
        assert_401(login(client, username, "wrong"))
    for username in [*variants, "alice\u00a0", "\tALICE\n"]:
        assert_429(login(client, username, PASSWORD))
    # Other accounts are not affected.
    assert login(client, "bob").status_code == 200


def test_success_clears_the_username_counter_only(
    make_app: MakeApp, key_prefix: str
) -> None:
    env = limited_app(make_app, key_prefix, JWT_AUTH_FLOOD_IP_LIMIT="12 per hour")
    client = env.app.test_client()
    for _ in range(4):
        assert_401(login(client, password="wrong"))
    assert login(client).status_code == 200
    # The username's count starts again: five more failures before a refusal.
    for _ in range(5):
        assert_401(login(client, password="wrong"))
    assert_429(login(client, password="wrong"))
    # 9 failures counted for the address; the success neither counted nor reset
    # it: three more failures reach 12, the 13th is refused.
    for i in range(3):
        assert_401(login(client, f"nobody-{i}", "wrong"))
    assert_429(login(client, "nobody-x", "wrong"))


def test_success_does_not_reset_the_address_counter(
    make_app: MakeApp, key_prefix: str
) -> None:
    env = limited_app(make_app, key_prefix, JWT_AUTH_FLOOD_IP_LIMIT="4 per hour")
    client = env.app.test_client()
    assert_401(login(client, "nobody-1", "wrong"))
    assert_401(login(client, "nobody-2", "wrong"))
    assert login(client).status_code == 200
    assert_401(login(client, "nobody-3", "wrong"))
    assert_401(login(client, "nobody-4", "wrong"))
    assert_429(login(client, "nobody-5", "wrong"))
    assert_429(login(client))


def test_x_forwarded_for_is_ignored(make_app: MakeApp, key_prefix: str) -> None:
    env = limited_app(make_app, key_prefix, JWT_AUTH_FLOOD_IP_LIMIT="3 per hour")
    client = env.app.test_client()
    attacker = {"REMOTE_ADDR": "203.0.113.7"}
    for i in range(3):
        response = login(
            client,
            f"nobody-{i}",
            "wrong",
            environ_base=attacker,
            headers={"X-Forwarded-For": f"198.51.100.{i}"},
        )
        assert_401(response)
    assert_429(
        login(
            client,
            "nobody-3",
            "wrong",
            environ_base=attacker,
            headers={"X-Forwarded-For": "198.51.100.200"},
        )
    )
    # Another address has its own counter.
    assert_401(
        login(client, "nobody-4", "wrong", environ_base={"REMOTE_ADDR": "203.0.113.8"})
    )


def test_x_forwarded_for_is_the_address_behind_proxy_fix(
    make_app: MakeApp, key_prefix: str
) -> None:
    env = limited_app(make_app, key_prefix, JWT_AUTH_FLOOD_IP_LIMIT="3 per hour")
    env.app.wsgi_app = ProxyFix(env.app.wsgi_app, x_for=1)  # type: ignore[method-assign]
    client = env.app.test_client()
    proxy = {"REMOTE_ADDR": "10.0.0.1"}
    # Many clients behind one proxy: each has its own counter.
    for i in range(6):
        response = login(
            client,
            f"nobody-{i}",
            "wrong",
            environ_base=proxy,
            headers={"X-Forwarded-For": f"198.51.100.{i}"},
        )
        assert_401(response)
    # One client, through two proxies: one counter.
    for i in range(4):
        response = login(
            client,
            f"other-{i}",
            "wrong",
            environ_base={"REMOTE_ADDR": f"10.0.0.{1 + i % 2}"},
            headers={"X-Forwarded-For": "198.51.100.99"},
        )
        if i < 3:
            assert_401(response)
        else:
            assert_429(response)


def test_refresh_limit(make_app: MakeApp, key_prefix: str) -> None:
    env = limited_app(make_app, key_prefix, JWT_AUTH_FLOOD_REFRESH_LIMIT="3 per hour")
    client = env.app.test_client()
    here = {"REMOTE_ADDR": "203.0.113.7"}
    elsewhere = {"REMOTE_ADDR": "203.0.113.8"}

    def refresh(token: str, environ: dict[str, str]) -> t.Any:
        return client.post(
            f"{PREFIX}/refresh", json={"refresh_token": token}, environ_base=environ
        )

    pair = login(client, environ_base=here).get_json()
    # Successful refreshes do not count.
    for _ in range(4):
        response = refresh(pair["refresh_token"], here)
        assert response.status_code == 200, response.get_data(as_text=True)
        pair = response.get_json()
    for i in range(3):
        response = refresh(f"not-a-token-{i}", here)
        assert_401(response)
    assert_429(refresh("not-a-token-4", here))
    # Only failures are refused: a valid token from this address still works (an
    # office behind one NAT address is not locked out by one client's failures).
    response = refresh(pair["refresh_token"], here)
    assert response.status_code == 200, response.get_data(as_text=True)
    pair = response.get_json()
    assert_429(refresh("not-a-token-5", here))
    response = refresh(pair["refresh_token"], elsewhere)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert_401(refresh("not-a-token-6", elsewhere))


@pytest.mark.parametrize(
    "key",
    [
        "JWT_AUTH_FLOOD_IP_LIMIT",
        "JWT_AUTH_FLOOD_USER_LIMIT",
        "JWT_AUTH_FLOOD_REFRESH_LIMIT",
    ],
)
@pytest.mark.parametrize("value", ["lots", "5 per fortnight", "five per minute"])
def test_invalid_limit_is_a_configuration_error(
    make_app: MakeApp, key: str, value: str
) -> None:
    with pytest.raises(ConfigurationError, match=key):
        make_app(RATELIMIT_ENABLED=True, **{key: value})


def test_unknown_storage_is_a_configuration_error(make_app: MakeApp) -> None:
    with pytest.raises(ConfigurationError, match="RATELIMIT_STORAGE_URI"):
        make_app(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="nope://here")


@pytest.mark.parametrize(
    "uri",
    [
        "nope://svc:hunter2-s3cret@cache.internal:6379",
        "redis+bogus://:hunter2-s3cret@cache.internal",
        "svc:hunter2-s3cret@cache.internal",
    ],
)
def test_a_bad_storage_uri_is_never_echoed(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture, uri: str
) -> None:
    with (
        caplog.at_level(logging.DEBUG),
        pytest.raises(ConfigurationError, match="RATELIMIT_STORAGE_URI") as caught,
    ):
        make_app(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=uri)
    assert "hunter2" not in str(caught.value)
    assert "hunter2" not in caplog.text


def test_ratelimit_enabled_false_turns_the_limits_off(
    make_app: MakeApp, key_prefix: str
) -> None:
    # The storage is unreachable too: with the limits off it is never used.
    env = make_app(
        RATELIMIT_ENABLED=False,
        RATELIMIT_STORAGE_URI=DEAD_REDIS,
        RATELIMIT_KEY_PREFIX=key_prefix,
        JWT_AUTH_FLOOD_REFRESH_LIMIT="1 per hour",
    )
    env.create_user("alice")
    verifier = count_verifications(env)
    client = env.app.test_client()
    for _ in range(20):
        assert_401(login(client, password="wrong"))
    assert verifier.count == 20
    for i in range(5):
        response = client.post(f"{PREFIX}/refresh", json={"refresh_token": f"x{i}"})
        assert_401(response)
    assert login(client).status_code == 200


# Storage down -------------------------------------------------------------------------


def test_storage_down_refuses_logins_with_503(
    make_app: MakeApp, key_prefix: str
) -> None:
    env = limited_app(make_app, key_prefix, RATELIMIT_STORAGE_URI=DEAD_REDIS)
    verifier = count_verifications(env)
    client = env.app.test_client()
    before = env.row_counts()
    for password in (PASSWORD, "wrong", PASSWORD):
        response = login(client, password=password)
        assert response.status_code == 503, response.get_data(as_text=True)
        body = response.get_json()
        assert body["error"] == "temporarily_unavailable"
        assert "access_token" not in body
        assert "refresh_token" not in body
        assert int(response.headers["Retry-After"]) >= 1
    response = client.post(f"{PREFIX}/refresh", json={"refresh_token": "x"})
    assert response.status_code == 503
    assert response.get_json()["error"] == "temporarily_unavailable"
    assert verifier.count == 0
    assert env.row_counts() == before


def test_storage_down_fail_open_counts_in_memory(
    make_app: MakeApp, key_prefix: str
) -> None:
    env = limited_app(
        make_app,
        key_prefix,
        RATELIMIT_STORAGE_URI=DEAD_REDIS,
        RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True,
    )
    verifier = count_verifications(env)
    client = env.app.test_client()
    response = login(client)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["access_token"]
    for _ in range(5):
        assert_401(login(client, password="wrong"))
    verifier.reset()
    assert_429(login(client, password="wrong"))
    assert_429(login(client))
    assert verifier.count == 0


def test_database_outage_is_not_a_failed_attempt(tmp_path: Path) -> None:
    """503s while the database is down do not use up the username's attempts."""
    folder = tmp_path / "later"
    env = build_app(
        f"sqlite:///{folder / 'db.sqlite'}",
        create_tables=False,
        RATELIMIT_ENABLED=True,
        JWT_AUTH_FLOOD_USER_LIMIT="2 per 5 minutes",
    )
    client = env.app.test_client()
    try:
        for _ in range(3):
            r = login(client, password="wrong")
            assert r.status_code == 503, r.get_data(as_text=True)
        folder.mkdir()
        with env.app.app_context():
            env.db.create_all()
        env.create_user("alice")
        assert_401(login(client, password="wrong"))
        assert_401(login(client, password="wrong"))
        assert_429(login(client, password="wrong"))
    finally:
        with env.app.app_context():
            env.db.session.remove()
            env.db.engine.dispose()


def test_a_give_back_after_its_window_never_leaves_a_negative_count() -> None:
    """An attempt counted at the end of a window and given back in the next (a
    log-in that spanned the boundary) must not start the new window at -1, which
    would allow one attempt more than the limit."""
    flood = FloodControl(
        {"JWT_AUTH_FLOOD_USER_LIMIT": "2 per minute", "JWT_AUTH_FLOOD_IP_LIMIT": None}
    )
    with time_machine.travel(1_800_000_000, tick=False) as traveller:
        reservation = flood.reserve(user="alice")
        traveller.shift(61)
        reservation.cancel()
        flood.reserve(user="alice")
        flood.reserve(user="alice")
        with pytest.raises(TooManyRequests):
            flood.reserve(user="alice")
