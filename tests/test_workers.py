"""The example app under gunicorn with four worker processes.

``examples/app.py`` is served by ``gunicorn -w 4 --threads 8`` on 127.0.0.1, on a
PostgreSQL schema of its own and a Redis for the flood counters, without
``--preload``: every worker builds its own application, as in production. Checked
across the workers:

- a log-out in one worker is honoured by every worker at once;
- the flood limits (per username, per address) are global;
- a refresh token raced from 4 processes x 8 threads has exactly one winner,
  in each of 200 rounds;
- a key rotation (``flask jwt keys rotate``) reaches every worker within the
  keys refresh interval (1 s here), and tokens signed before keep working.

Every request goes on a fresh connection (``Connection: close``), so the kernel
hands it to whichever worker accepts first. The access log records the worker's
pid of every request (``%(p)s``); each check repeats its request until all four
workers have answered it (at least 40 times), and asserts that they did.

Needs ``TEST_POSTGRESQL_URL`` and ``TEST_REDIS_URL`` (``.ci/run`` sets them);
without them the tests skip locally and fail in CI.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import http.client
import importlib.util
import json
import multiprocessing
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import typing as t
import uuid
from pathlib import Path
from types import ModuleType

import jwt
import pytest
import sqlalchemy as sa
from conftest import PREFIX
from conftest import malformed_chunked
from conftest import raw_http
from conftest import require_backend
from cryptography.fernet import Fernet
from werkzeug.security import generate_password_hash

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "app.py"
WORKERS = 4
THREADS_PER_WORKER = 8
#: Seconds a request, a barrier wait or a thread join may take.
TIMEOUT = 20.0
#: Seconds gunicorn may take until all its workers answer.
START_TIMEOUT = 60.0
#: Requests per check at least; more until every worker has answered.
CHECK_REQUESTS = 40
#: Requests per check at most: a worker that never answers fails the check.
MAX_CHECK_REQUESTS = 400
#: Requests sent at once by a check, each on its own connection.
CHECK_CONCURRENCY = 8

#: The refresh race: rounds, client processes, threads per process.
RACE_ROUNDS = 200
RACE_PROCESSES = 4
RACE_THREADS = 8
RACE_BUDGET = 170.0

#: ``JWT_AUTH_KEYS_REFRESH_INTERVAL`` of the workers, and how long after a
#: rotation every worker must sign with the new key.
KEYS_REFRESH_INTERVAL = 1
ROTATION_DEADLINE = 2.0

#: Shared by every worker, as it must be: a token signed by one verifies in all.
SECRET_KEY = "workers-test-secret-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHI"[:64]
PASSWORD = "correct horse battery staple"
#: alice logs in 200+ times: a fast hash keeps the race about the race.
FAST_HASH = "pbkdf2:sha256:1000"

#: Client addresses of their own for the flood tests (all of 127.0.0.0/8 is
#: loopback on Linux): an address over its limit stays refused for an hour, and
#: the other tests log in from 127.0.0.1.
USER_FLOOD_ADDRESS = "127.0.0.3"
ADDRESS_FLOOD_ADDRESS = "127.0.0.2"

#: Each check sends this header with a value of its own, and the access log
#: records it with the worker's pid: the log tells which workers answered.
TAG_HEADER = "X-Test-Tag"
ACCESS_LOG_FORMAT = "%(p)s %(m)s %(U)s %(s)s %({x-test-tag}i)s"
_ACCESS_LINE = re.compile(r"^<(\d+)> (\S+) (\S+) (\d{3}) (\S+)$")


# HTTP on fresh connections ------------------------------------------------------------


@dataclasses.dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: t.Any


def request(
    port: int,
    method: str,
    path: str,
    body: t.Any = None,
    *,
    token: str | None = None,
    source: str = "127.0.0.1",
    tag: str = "-",
) -> Reply:
    """One request on a connection of its own, from ``source``; closed after."""
    headers = {"Connection": "close", TAG_HEADER: tag}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    conn = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=TIMEOUT, source_address=(source, 0)
    )
    try:
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode("utf-8", "replace")
        return Reply(
            response.status, {k.lower(): v for k, v in response.getheaders()}, parsed
        )
    finally:
        conn.close()


def kid_of(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


# The server ---------------------------------------------------------------------------


@dataclasses.dataclass
class Server:
    """gunicorn serving the example; its logs; the environment it runs with."""

    port: int
    proc: subprocess.Popen[bytes]
    env: dict[str, str]
    access_log: Path
    error_log: Path
    worker_pids: set[int]

    def access_lines(self) -> list[tuple[int, str, str, int, str]]:
        """Every access log line so far: (pid, method, path, status, tag)."""
        lines = []
        for line in _read(self.access_log).splitlines():
            match = _ACCESS_LINE.match(line.strip())
            if match:
                pid, method, path, status, tag = match.groups()
                lines.append((int(pid), method, path, int(status), tag))
        return lines

    def pids(self, tag: str, count: int) -> list[int]:
        """The pids of the workers that answered the ``count`` requests tagged
        ``tag`` (a worker logs a request just after answering it: wait for it)."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            pids = [pid for pid, *_, logged in self.access_lines() if logged == tag]
            if len(pids) >= count or time.monotonic() > deadline:
                assert len(pids) == count, (tag, len(pids), count)
                return pids
            time.sleep(0.02)

    def check_all_workers(
        self,
        send: t.Callable[[str], Reply],
        *,
        minimum: int = CHECK_REQUESTS,
        concurrency: int = CHECK_CONCURRENCY,
    ) -> list[Reply]:
        """``send(tag)`` (one request with ``tag``, on a fresh connection) in bursts
        of ``concurrency`` until at least ``minimum`` were sent and every worker has
        answered one; returns every reply."""
        tag = uuid.uuid4().hex
        replies: list[Reply] = []
        pids: set[int] = set()
        with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
            while len(replies) < minimum or pids != self.worker_pids:
                assert len(replies) < MAX_CHECK_REQUESTS, (
                    f"workers {sorted(self.worker_pids - pids)} never answered"
                    f" in {len(replies)} requests"
                )
                futures = [pool.submit(send, tag) for _ in range(concurrency)]
                replies.extend(f.result(timeout=2 * TIMEOUT) for f in futures)
                pids = set(self.pids(tag, len(replies)))
                assert pids <= self.worker_pids, (pids, self.worker_pids)
        return replies

    def flask(self, *args: str) -> str:
        """``flask --app examples/app.py ARGS`` with the workers' environment."""
        result = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "examples/app.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result.stdout

    def assert_workers_unchanged(self) -> None:
        """No worker died (and was replaced) during the test."""
        assert self.proc.poll() is None, self.error_log.read_text()
        assert self.booted_pids() == self.worker_pids, self.error_log.read_text()

    def booted_pids(self) -> set[int]:
        return {
            int(pid)
            for pid in re.findall(
                r"Booting worker with pid: (\d+)", self.error_log.read_text()
            )
        }


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _gunicorn_command(port: int, access_log: Path, error_log: Path) -> list[str]:
    import gunicorn

    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        str(WORKERS),
        "--threads",
        str(THREADS_PER_WORKER),
        "--bind",
        f"127.0.0.1:{port}",
        "--access-logfile",
        str(access_log),
        "--access-logformat",
        ACCESS_LOG_FORMAT,
        "--error-logfile",
        str(error_log),
        "--graceful-timeout",
        "10",
    ]
    if gunicorn.version_info >= (27,):
        # gunicorn 27 opens a control socket in ~/.gunicorn by default, shared
        # by every gunicorn of the user; these tests need none.
        command.append("--no-control-socket")
    # examples/ on the path, as for `flask --app examples/app.py`: the example
    # imports examples/users.py.
    return [*command, "--pythonpath", "examples", "app:create_app()"]


def _load_example() -> ModuleType:
    """``examples/app.py`` imported under a name of its own (test_example.py has
    another), to create the fast-hash user in this process."""
    name = "flask_jwt_authentication_workers_example"
    spec = importlib.util.spec_from_file_location(name, EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(EXAMPLE.parent))  # for examples/users.py
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(EXAMPLE.parent))
    return module


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # graceful: workers finish, then exit
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[Server]:
    """gunicorn with 4 workers serving the example on an empty PostgreSQL schema
    of its own (the workers create the tables, all at once) and the Redis under a
    key prefix of its own; users ``alice`` (fast hash) and ``bob`` (made by
    ``flask create-user``)."""
    database_url = require_backend("postgresql")
    redis_url = require_backend("redis")
    tmp = tmp_path_factory.mktemp("workers")
    schema = f"test_workers_{uuid.uuid4().hex[:12]}"
    key_prefix = f"test-workers-{uuid.uuid4().hex}:"
    admin = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = (
        sa.engine.make_url(database_url)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
    env.update(
        {
            "FLASK_SQLALCHEMY_DATABASE_URI": url,
            "FLASK_SQLALCHEMY_ENGINE_OPTIONS": json.dumps({"pool_pre_ping": True}),
            "FLASK_JWT_AUTH_SECRET_KEY": SECRET_KEY,
            "FLASK_JWT_AUTH_KEY_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "FLASK_JWT_AUTH_KEYS_REFRESH_INTERVAL": str(KEYS_REFRESH_INTERVAL),
            "FLASK_RATELIMIT_ENABLED": "true",
            "FLASK_RATELIMIT_STORAGE_URI": redis_url,
            "FLASK_RATELIMIT_KEY_PREFIX": key_prefix,
            # The race makes 31 failed refreshes a round from 127.0.0.1, 6200 in
            # all: far over the default 100 per hour per address.
            "FLASK_JWT_AUTH_FLOOD_REFRESH_LIMIT": "100000 per hour",
        }
    )
    port = _free_port()
    access_log, error_log = tmp / "access.log", tmp / "error.log"
    proc = subprocess.Popen(
        _gunicorn_command(port, access_log, error_log),
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = Server(port, proc, env, access_log, error_log, set())
    example = None
    try:
        # Up when all four workers answer.
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert proc.poll() is None, (
                f"gunicorn exited ({proc.returncode}):\n{_read(error_log)}"
            )
            assert time.monotonic() < deadline, f"not up:\n{_read(error_log)}"
            booted = server.booted_pids() if error_log.exists() else set()
            answered = set()
            if len(booted) == WORKERS:
                with concurrent.futures.ThreadPoolExecutor(CHECK_CONCURRENCY) as pool:
                    list(
                        pool.map(
                            lambda _: _try_jwks(port), range(CHECK_CONCURRENCY * 2)
                        )
                    )
                answered = {pid for pid, *_ in server.access_lines()}
            if len(booted) == WORKERS and answered == booted:
                server.worker_pids = booted
                break
            time.sleep(0.2)

        assert "Created user 'bob'." in server.flask(
            "create-user", "bob", "--password", PASSWORD
        )
        example = _load_example()
        app = example.create_app({"SQLALCHEMY_DATABASE_URI": url})
        with app.app_context():
            example.db.session.add(
                sys.modules["users"].User(
                    username="alice",
                    password_hash=generate_password_hash(PASSWORD, method=FAST_HASH),
                )
            )
            example.db.session.commit()
            example.db.session.remove()
            example.db.engine.dispose()
        yield server
    finally:
        _stop(proc)
        if example is not None:
            sys.modules.pop(example.__name__, None)
            sys.modules.pop("users", None)
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
        _delete_redis_keys(redis_url, key_prefix)


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def _try_jwks(port: int) -> int:
    try:
        return request(port, "GET", "/.well-known/jwks.json").status
    except OSError:
        return -1


def _delete_redis_keys(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=TIMEOUT)
    try:
        keys = list(client.scan_iter(match=f"*{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def log_in(
    server: Server,
    username: str = "alice",
    password: str = PASSWORD,
    source: str = "127.0.0.1",
    tag: str = "-",
) -> Reply:
    return request(
        server.port,
        "POST",
        f"{PREFIX}/tokens",
        {"username": username, "password": password},
        source=source,
        tag=tag,
    )


def tokens(server: Server) -> dict[str, t.Any]:
    reply = log_in(server)
    assert reply.status == 200, reply
    return t.cast(dict[str, t.Any], reply.body)


def assert_too_many(reply: Reply) -> None:
    assert reply.status == 429, reply
    assert reply.body["error"] == "too_many_requests", reply
    assert 1 <= int(reply.headers["retry-after"]) <= 3601, reply


# Log-out ------------------------------------------------------------------------------


@pytest.mark.slow
def test_logout_in_one_worker_is_honoured_by_all_at_once(server: Server) -> None:
    pair = tokens(server)
    access = pair["access_token"]

    def me(tag: str) -> Reply:
        return request(server.port, "GET", "/api/me", token=access, tag=tag)

    for reply in server.check_all_workers(me):
        assert reply.status == 200, reply
        assert reply.body["username"] == "alice"

    reply = request(server.port, "POST", f"{PREFIX}/logout", token=access)
    assert reply.status == 204, reply

    # At once: no worker accepts the token after the log-out has answered.
    for reply in server.check_all_workers(me):
        assert reply.status == 401, reply
        assert 'error="invalid_token"' in reply.headers["www-authenticate"], reply
    # The session's refresh token ended with it.
    reply = request(
        server.port,
        "POST",
        f"{PREFIX}/refresh",
        {"refresh_token": pair["refresh_token"]},
    )
    assert reply.status == 401, reply
    assert reply.body["error"] == "invalid_grant"
    server.assert_workers_unchanged()


# Flood limits -------------------------------------------------------------------------


@pytest.mark.slow
def test_username_limit_is_global(server: Server) -> None:
    """5 failures for bob, on whichever workers: every worker refuses the 6th
    attempt, right password included. At most one worker can have seen all
    five, so the others refuse on the shared count alone."""
    tag = uuid.uuid4().hex
    for i in range(5):
        reply = log_in(server, "bob", f"wrong-{i}", USER_FLOOD_ADDRESS, tag)
        assert reply.status == 401, (i, reply)
        assert reply.body["error"] == "invalid_grant"
    failed_on = server.pids(tag, 5)

    attempts = iter(range(MAX_CHECK_REQUESTS))

    def attempt(tag: str) -> Reply:
        # Wrong and right passwords in turn: both refused.
        password = PASSWORD if next(attempts) % 2 else "wrong-again"
        return log_in(server, "bob", password, USER_FLOOD_ADDRESS, tag)

    for reply in server.check_all_workers(attempt):
        assert_too_many(reply)
    print(f"\n[workers] bob's 5 failures answered by pids {failed_on}")
    # Another account from that address is not locked.
    reply = log_in(server, "alice", source=USER_FLOOD_ADDRESS)
    assert reply.status == 200, reply
    server.assert_workers_unchanged()


@pytest.mark.slow
def test_address_limit_is_global(server: Server) -> None:
    """The default 50 failures per hour per address, spread over the workers and
    over usernames (each under its own limit), with successful log-ins between
    them: the 51st attempt is refused by every worker; other addresses are not."""
    source = ADDRESS_FLOOD_ADDRESS

    def failure(i: int) -> Reply:
        return log_in(server, f"nobody-{i}", "wrong", source=source)

    with concurrent.futures.ThreadPoolExecutor(CHECK_CONCURRENCY) as pool:
        for start in range(0, 50, 10):
            replies = list(pool.map(failure, range(start, start + 10)))
            assert [r.status for r in replies] == [401] * 10, replies
            if start + 10 < 50:
                # Successes neither count nor reset the address counter.
                assert log_in(server, "alice", source=source).status == 200

    counter = iter(range(51, 51 + MAX_CHECK_REQUESTS))

    def attempt(tag: str) -> Reply:
        i = next(counter)
        if i % 2:
            return log_in(server, f"nobody-{i}", "wrong", source, tag)
        return log_in(server, "alice", PASSWORD, source, tag)  # the right one

    for reply in server.check_all_workers(attempt):
        assert_too_many(reply)
    assert log_in(server, "alice").status == 200  # from 127.0.0.1
    server.assert_workers_unchanged()


# The refresh race ---------------------------------------------------------------------


def _race_client(
    port: int,
    threads: int,
    barrier: t.Any,
    tasks: t.Any,
    results: t.Any,
) -> None:
    """A client process: for each (refresh token, tag) from ``tasks`` (``None``
    ends), ``threads`` threads each connect, wait at ``barrier`` (shared by every
    process's threads) and POST it; puts the (status, body) list on ``results``.

    Runs in a spawned process; every failure becomes a result, never a crash.
    """
    while True:
        task = tasks.get()
        if task is None:
            return
        token, tag = task
        out: list[tuple[int, t.Any]] = [(-1, "no result")] * threads

        def one(
            i: int, token: str = token, tag: str = tag, out: list[t.Any] = out
        ) -> None:
            body = json.dumps({"refresh_token": token}).encode()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
            try:
                conn.connect()
                barrier.wait()
                conn.request(
                    "POST",
                    f"{PREFIX}/refresh",
                    body=body,
                    headers={
                        "Content-Type": "application/json",
                        "Connection": "close",
                        TAG_HEADER: tag,
                    },
                )
                response = conn.getresponse()
                out[i] = (response.status, json.loads(response.read()))
            except Exception as e:
                barrier.abort()
                out[i] = (-1, f"{type(e).__name__}: {e}")
            finally:
                conn.close()

        workers = [threading.Thread(target=one, args=(i,)) for i in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=3 * TIMEOUT)
        results.put(out)


@pytest.mark.slow
def test_refresh_race_across_processes_has_one_winner(server: Server) -> None:
    """200 rounds: log in, then 4 processes x 8 threads, released together by
    one barrier, POST the same refresh token; exactly one gets a new pair, 31
    get 401, and the session ends (the losers replayed a consumed token)."""
    parties = RACE_PROCESSES * RACE_THREADS
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(parties, timeout=TIMEOUT)
    results = context.Queue()
    task_queues = [context.Queue() for _ in range(RACE_PROCESSES)]
    processes = [
        context.Process(
            target=_race_client,
            args=(server.port, RACE_THREADS, barrier, queue, results),
            daemon=True,
        )
        for queue in task_queues
    ]
    run = uuid.uuid4().hex
    for process in processes:
        process.start()
    started = time.monotonic()
    try:
        for round_no in range(RACE_ROUNDS):
            elapsed = time.monotonic() - started
            assert elapsed < RACE_BUDGET, (
                f"only {round_no} of {RACE_ROUNDS} rounds in {elapsed:.0f} s"
            )
            pair = tokens(server)
            for queue in task_queues:
                queue.put((pair["refresh_token"], f"{run}-{round_no}"))
            replies = [
                reply for _ in task_queues for reply in results.get(timeout=4 * TIMEOUT)
            ]
            statuses = sorted(status for status, _ in replies)
            assert statuses == [200] + [401] * (parties - 1), (round_no, replies)
            for status, body in replies:
                if status == 401:
                    assert body["error"] == "invalid_grant", (round_no, body)
            (winner,) = [body for status, body in replies if status == 200]
            assert winner["refresh_token"] != pair["refresh_token"]
            # The losers presented a consumed token: the whole session is
            # revoked, the winner's new tokens with it.
            reply = request(server.port, "GET", "/api/me", token=winner["access_token"])
            assert reply.status == 401, (round_no, reply)
        elapsed = time.monotonic() - started
    finally:
        for queue in task_queues:
            queue.put(None)
        for process in processes:
            process.join(timeout=TIMEOUT)
            if process.is_alive():
                process.terminate()
                process.join(timeout=TIMEOUT)
        for queue in [*task_queues, results]:
            queue.close()
            queue.join_thread()

    # Which workers answered each round's 32 refreshes.
    server.pids(f"{run}-{RACE_ROUNDS - 1}", parties)
    by_round: dict[str, set[int]] = {}
    served: list[int] = []
    for pid, _, path, _, tag in server.access_lines():
        if tag.startswith(f"{run}-"):
            assert path == f"{PREFIX}/refresh"
            by_round.setdefault(tag, set()).add(pid)
            served.append(pid)
    assert len(served) == RACE_ROUNDS * parties
    assert set(served) == server.worker_pids
    spread = collections.Counter(len(pids) for pids in by_round.values())
    # Every round raced across processes, not within one worker.
    assert spread[1] == 0, spread
    shares = {pid: served.count(pid) for pid in sorted(server.worker_pids)}
    print(
        f"\n[workers] refresh race: {RACE_ROUNDS} rounds x {RACE_PROCESSES}"
        f" processes x {RACE_THREADS} threads, one winner each, {elapsed:.1f} s;"
        f" rounds by workers racing {dict(sorted(spread.items()))};"
        f" refreshes per worker {shares}"
    )
    server.assert_workers_unchanged()


# Key rotation -------------------------------------------------------------------------


@pytest.mark.slow
def test_key_rotation_reaches_every_worker(server: Server) -> None:
    before = tokens(server)["access_token"]
    old_kid = kid_of(before)

    output = server.flask("jwt", "keys", "rotate")
    rotated = time.monotonic()
    match = re.search(r"Key (\S+) now signs\.", output)
    assert match, output
    new_kid = match.group(1)
    assert new_kid != old_kid

    # Every worker reloads its key set within the refresh interval (1 s).
    time.sleep(max(0.0, rotated + ROTATION_DEADLINE - time.monotonic()))
    # Four log-ins at a time: each counts against alice's flood limit (5 per 5
    # minutes) until it succeeds, so more at once would be refused.
    issued = server.check_all_workers(
        lambda tag: log_in(server, tag=tag), concurrency=4
    )
    for reply in issued:
        assert reply.status == 200, reply
        assert kid_of(reply.body["access_token"]) == new_kid, reply

    # Every worker accepts a token of the new key, and still one of the old.
    after = issued[0].body["access_token"]
    for token in (after, before):

        def me(tag: str, token: str = token) -> Reply:
            return request(server.port, "GET", "/api/me", token=token, tag=tag)

        for reply in server.check_all_workers(me):
            assert reply.status == 200, (kid_of(token), reply)
    server.assert_workers_unchanged()


@pytest.mark.slow
def test_a_settings_change_reaches_every_worker(server: Server) -> None:
    assert tokens(server)["expires_in"] == 900
    try:
        output = server.flask("jwt", "settings", "set", "access_token_ttl", "600")
        changed = time.monotonic()
        assert "Saved." in output, output

        # Every worker reloads the stored settings within the interval (1 s).
        time.sleep(max(0.0, changed + ROTATION_DEADLINE - time.monotonic()))
        issued = server.check_all_workers(
            lambda tag: log_in(server, tag=tag), concurrency=4
        )
        for reply in issued:
            assert reply.status == 200, reply
            assert reply.body["expires_in"] == 600, reply
    finally:
        server.flask("jwt", "settings", "unset", "access_token_ttl")
    server.assert_workers_unchanged()


@pytest.mark.slow
def test_a_malformed_chunked_body_is_a_400_under_gunicorn(server: Server) -> None:
    """gunicorn reports a chunk size that is not hexadecimal as an error of its
    own while the body is read: a JSON 400, not a 500."""
    status, body = raw_http(server.port, malformed_chunked(f"{PREFIX}/tokens"))
    assert status == 400, body
    assert body["error"] == "invalid_request"
