"""How fast ``flask jwt cleanup`` deletes, and what it costs concurrent requests.

    python benchmarks/cleanup.py [--rows N | --quick] [--batch-size 1000]
                                 [--threads 4] [--backend sqlite|postgresql|all]

Per database (an SQLite file in WAL mode with ``synchronous=NORMAL``, always; and
PostgreSQL at ``TEST_POSTGRESQL_URL`` or
``postgresql+psycopg://postgres@127.0.0.1:5432/test`` when reachable, in a schema of
its own that is dropped afterwards; skipped with a note otherwise):

1. fills the tables with ``--rows`` expired rows in all (default 1,000,000;
   ``--quick``: 100,000): a third login sessions, a third their refresh tokens (one
   each), a third revoked jtis, all expired in the past, inserted with
   ``executemany`` in chunks of 10,000 (multi-row ``INSERT``s, no ``COPY``);
2. serves the application on a real threaded server on 127.0.0.1 and starts
   ``--threads`` client threads, each looping over ``GET /api/me`` with its own
   access token (``@jwt_required``, revocation checked) and, every fifth request,
   ``POST {prefix}/refresh``; one connection per request;
3. measures their latency for ``--baseline`` seconds (default 10) before the
   cleanup, then runs the cleanup in a separate process (as cron would:
   ``Store.cleanup`` with the batch size, no time limit) while the clients keep
   going, and measures their latency during it;
4. prints rows deleted per second and the latency percentiles before and during.

This is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import typing as t
import uuid

import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from werkzeug.security import generate_password_hash
from werkzeug.serving import WSGIRequestHandler
from werkzeug.serving import make_server

from flask_jwt_authentication import JWTAuthentication
from flask_jwt_authentication import current_user
from flask_jwt_authentication import jwt_required
from flask_jwt_authentication.extension import get_state

PREFIX = "/jwt-authentication/api/auth"
PASSWORD = "benchmark password"
HASH_METHOD = "pbkdf2:sha256:1000"
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CHUNK = 10_000


def create_app(url: str, schema: str | None = None) -> tuple[Flask, SQLAlchemy]:
    class Base(DeclarativeBase):
        pass

    db = SQLAlchemy(model_class=Base)

    class User(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "users"
        id: Mapped[int] = mapped_column(primary_key=True)
        username: Mapped[str] = mapped_column(sa.String(255), unique=True)
        password_hash: Mapped[str | None] = mapped_column(sa.String(255))

    jwt = JWTAuthentication()
    jwt.dummy_password_hash = generate_password_hash("dummy", method=HASH_METHOD)

    @jwt.user_lookup
    def find_user(username: str) -> t.Any:
        return db.session.execute(
            sa.select(User).filter_by(username=username)
        ).scalar_one_or_none()

    @jwt.user_loader
    def load_user(uid: t.Any) -> t.Any:
        return db.session.get(User, uid) if isinstance(uid, int) else None

    options: dict[str, t.Any] = {}
    if schema:
        options["connect_args"] = {"options": f"-csearch_path={schema}"}
    if url.startswith("postgresql"):
        options["pool_size"] = 20
    app = Flask("cleanup-benchmark")
    app.config.update(
        SECRET_KEY="s" * 64,
        SQLALCHEMY_DATABASE_URI=url,
        SQLALCHEMY_ENGINE_OPTIONS=options,
        RATELIMIT_ENABLED=False,
    )
    db.init_app(app)
    jwt.init_app(app, db=db)
    app.extensions["benchmark_user_model"] = User

    @app.get("/api/me")
    @jwt_required
    def me() -> dict[str, t.Any]:
        return {"username": current_user.username}

    with app.app_context():
        if url.startswith("sqlite"):
            sa.event.listen(db.engine, "connect", _sqlite_pragmas)
    return app, db


def _sqlite_pragmas(dbapi_connection: t.Any, connection_record: t.Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def fill(app: Flask, db: SQLAlchemy, rows: int) -> tuple[int, float]:
    """Insert ``rows`` expired rows; returns the count and the seconds it took."""
    tables = db.metadata.tables
    per_kind = rows // 3
    now = int(time.time())
    started = time.perf_counter()
    with app.app_context():
        session = db.session
        done = 0
        while done < per_kind:
            n = min(CHUNK, per_kind - done)
            sessions, tokens, jtis = [], [], []
            for i in range(done, done + n):
                sid = uuid.uuid4()
                expires = now - 60 - i % 100_000
                sessions.append(
                    {
                        "id": sid,
                        "user_id": str(i % 1000),
                        "created_at": expires - 1_209_600,
                        "last_used_at": expires - 1_209_600,
                        "expires_at": expires,
                        "client_ip": "192.0.2.1",
                        "user_agent": "benchmark",
                    }
                )
                tokens.append(
                    {
                        "token_hash": uuid.uuid4().hex + uuid.uuid4().hex,
                        "session_id": sid,
                        "issued_at": expires - 1_209_600,
                        "expires_at": expires,
                    }
                )
                jtis.append(
                    {
                        "jti": uuid.uuid4().hex,
                        "revoked_at": expires - 900,
                        "expires_at": expires,
                    }
                )
            session.execute(sa.insert(tables["jwt_auth_sessions"]), sessions)
            session.execute(sa.insert(tables["jwt_auth_refresh_tokens"]), tokens)
            session.execute(sa.insert(tables["jwt_auth_revoked_tokens"]), jtis)
            session.commit()
            done += n
        if db.engine.dialect.name == "postgresql":
            session.execute(sa.text("ANALYZE"))
            session.commit()
    return 3 * per_kind, time.perf_counter() - started


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class Load:
    """Client threads; latencies in ms per phase and kind."""

    def __init__(self, port: int, pairs: list[dict[str, t.Any]]) -> None:
        self.port = port
        self.pairs = pairs
        self.phase = "warm-up"
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.samples: dict[tuple[str, str], list[float]] = {}
        self.errors: dict[str, int] = {}

    def request(
        self, method: str, path: str, body: t.Any = None, token: str | None = None
    ) -> tuple[int, t.Any, float]:
        headers = {"Connection": "close", "Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        started = time.perf_counter()
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        finally:
            conn.close()
        elapsed = (time.perf_counter() - started) * 1000
        return response.status, json.loads(raw) if raw else None, elapsed

    def worker(self, index: int) -> None:
        pair = self.pairs[index]
        n = 0
        while not self.stop.is_set():
            n += 1
            phase = self.phase
            if n % 5 == 0:
                status, body, ms = self.request(
                    "POST",
                    f"{PREFIX}/refresh",
                    {"refresh_token": pair["refresh_token"]},
                )
                kind = "refresh"
                if status == 200:
                    pair = body
            else:
                status, _, ms = self.request(
                    "GET", "/api/me", token=pair["access_token"]
                )
                kind = "me"
            with self.lock:
                if status != 200:
                    self.errors[f"{kind} {status}"] = (
                        self.errors.get(f"{kind} {status}", 0) + 1
                    )
                self.samples.setdefault((phase, kind), []).append(ms)


def percentiles(values: list[float]) -> tuple[int, float, float, float]:
    if len(values) < 2:
        return len(values), float("nan"), float("nan"), float("nan")
    q = statistics.quantiles(values, n=100, method="inclusive")
    return len(values), statistics.median(values), q[94], q[98]


def run_cleanup_process(url: str, schema: str | None, batch_size: int) -> t.Any:
    """Run the cleanup in another process, as cron would; its JSON result."""
    args = [
        sys.executable,
        __file__,
        "--_cleanup",
        url,
        "--batch-size",
        str(batch_size),
    ]
    if schema:
        args += ["--_schema", schema]
    out = subprocess.run(args, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def cleanup_child(url: str, schema: str | None, batch_size: int) -> None:
    app, _ = create_app(url, schema)
    with app.app_context():
        started = time.perf_counter()
        counts = get_state().store.cleanup(
            now=int(time.time()),
            batch_size=batch_size,
            deadline=time.monotonic() + 3600,
        )
        elapsed = time.perf_counter() - started
    print(json.dumps({"counts": counts, "seconds": elapsed}))


def bench(name: str, url: str, schema: str | None, args: argparse.Namespace) -> None:
    print(f"\n== {name}: {args.rows:,} expired rows, batch size {args.batch_size}")
    app, db = create_app(url, schema)
    User = app.extensions["benchmark_user_model"]
    with app.app_context():
        db.drop_all()
        db.create_all()
        for i in range(args.threads):
            db.session.add(
                User(
                    username=f"user{i}",
                    password_hash=generate_password_hash(PASSWORD, method=HASH_METHOD),
                )
            )
        db.session.commit()
    inserted, seconds = fill(app, db, args.rows)
    print(f"fill: {inserted:,} rows in {seconds:.1f} s ({inserted / seconds:,.0f}/s)")

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        load = Load(server.server_port, [])
        for i in range(args.threads):
            status, pair, _ = load.request(
                "POST",
                f"{PREFIX}/tokens",
                {"username": f"user{i}", "password": PASSWORD},
            )
            assert status == 200, pair
            load.pairs.append(pair)
        threads = [
            threading.Thread(target=load.worker, args=(i,)) for i in range(args.threads)
        ]
        for thread in threads:
            thread.start()
        time.sleep(2)
        load.phase = "before"
        time.sleep(args.baseline)
        load.phase = "during"
        result = run_cleanup_process(url, schema, args.batch_size)
        load.phase = "after"
        load.stop.set()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        server.shutdown()
        server.server_close()
    counts, elapsed = result["counts"], result["seconds"]
    total = sum(counts.values())
    print(
        f"cleanup: {counts['sessions']:,} sessions, {counts['refresh_tokens']:,}"
        f" refresh tokens, {counts['revoked_tokens']:,} revoked jtis = {total:,} rows"
        f" in {elapsed:.1f} s: {total / elapsed:,.0f} rows/s"
    )
    header = ("phase", "route", "n", "median ms", "p95 ms", "p99 ms")
    print("{:8} {:8} {:>6} {:>10} {:>8} {:>8}".format(*header))
    for phase in ("before", "during"):
        for kind in ("me", "refresh"):
            n, med, p95, p99 = percentiles(load.samples.get((phase, kind), []))
            print(f"{phase:8} {kind:8} {n:>6} {med:>10.2f} {p95:>8.2f} {p99:>8.2f}")
    print(f"non-200 answers: {load.errors or 'none'}")
    with app.app_context():
        left = {
            table: db.session.execute(
                sa.select(sa.func.count()).select_from(db.metadata.tables[table])
            ).scalar_one()
            for table in ("jwt_auth_sessions", "jwt_auth_revoked_tokens")
        }
        db.session.remove()
        if schema is None:
            db.drop_all()
        db.engine.dispose()
    print(f"rows left (live ones of the clients): {left}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100,000 rows")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--baseline", type=float, default=10.0)
    parser.add_argument(
        "--backend", choices=["sqlite", "postgresql", "all"], default="all"
    )
    parser.add_argument("--_cleanup", help=argparse.SUPPRESS)
    parser.add_argument("--_schema", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._cleanup:
        cleanup_child(args._cleanup, args._schema, args.batch_size)
        return
    if args.quick:
        args.rows = 100_000
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    if args.backend in ("sqlite", "all"):
        with tempfile.TemporaryDirectory() as tmp:
            bench("SQLite", f"sqlite:///{tmp}/cleanup.db", None, args)
    if args.backend in ("postgresql", "all"):
        url = os.environ.get("TEST_POSTGRESQL_URL", PG_DEFAULT)
        schema = f"bench_cleanup_{uuid.uuid4().hex[:8]}"
        try:
            engine = sa.create_engine(url)
            with engine.begin() as connection:
                connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
        except Exception as e:
            print(
                f"\n== PostgreSQL skipped: not reachable at {url} ({type(e).__name__})"
            )
            return
        try:
            bench("PostgreSQL", url, schema, args)
        finally:
            with engine.begin() as connection:
                connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
            engine.dispose()


if __name__ == "__main__":
    main()
