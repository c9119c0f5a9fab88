"""What revocation costs on the hot path, and how fast a log-out reaches another
worker, in push mode (``JWT_AUTH_REVOCATION_SYNC = "push"``) and in database
mode, side by side in one run.

    pip install -e '.[benchmark]'
    python benchmarks/revocation.py [--quick]

Part 1, the protected request (HS256; an SQLite file, and PostgreSQL at
``TEST_POSTGRESQL_URL`` or ``postgresql+psycopg://postgres@127.0.0.1:5432/test``
when reachable, in a schema of its own). Every route keeps the user in memory, so
only the token work differs:

- ``floor``: one PyJWT ``jwt.decode`` with the same claim checks, no database;
- ``push``: ``@jwt_required`` in push mode;
- ``database``: ``@jwt_required`` in database mode (one indexed query);
- ``fje``: Flask-JWT-Extended's ``@jwt_required()`` with its documented database
  blocklist (an indexed table of 100,000 jtis).

Requests are single WSGI calls with prepared environs (as in
``protected_request.py``), interleaved in short rounds; it also counts the SQL
statements of the push route.

Part 2, propagation: two worker processes of one app serve HTTP on 127.0.0.1
(this script with ``--serve``); for each of N log-outs on worker A, the script
calls worker B with the same token until it answers 401, and prints the delay's
median, p99 and maximum, in push mode (with the database's own feed) and, for
reference, database mode. This is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import typing as t
import uuid
from pathlib import Path

import jwt as pyjwt
import sqlalchemy as sa
from flask import Flask
from flask import abort
from flask import request
from flask_jwt_extended import JWTManager
from flask_jwt_extended import create_access_token
from flask_jwt_extended import current_user as fje_current_user
from flask_jwt_extended import jwt_required as fje_jwt_required
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from werkzeug.security import generate_password_hash
from werkzeug.serving import WSGIRequestHandler
from werkzeug.serving import make_server

sys.path.insert(0, str(Path(__file__).resolve().parent))

import protected_request as pr

from flask_jwt_authentication import JWTAuthentication
from flask_jwt_authentication import current_user
from flask_jwt_authentication import get_jwt
from flask_jwt_authentication import jwt_required

PREFIX = "/jwt-authentication/api/auth"
PASSWORD = "correct horse battery staple"
ISSUER = "bench"
ROUTES = ("floor", "push", "database", "fje")
#: (numerator, denominator, goal)
RATIOS = (
    ("push", "floor", 1.15),
    ("push", "fje", 0.3),
    ("database", "floor", None),
    ("push", "database", None),
)


class MemoryUser:
    """The user every route serves, kept in memory."""

    id = 1
    username = "alice"
    is_active = True


ALICE = MemoryUser()


def make_db() -> tuple[SQLAlchemy, t.Any, t.Any]:
    class Base(DeclarativeBase):
        pass

    db = SQLAlchemy(model_class=Base)

    class User(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "bench_users"
        id: Mapped[int] = mapped_column(primary_key=True)
        username: Mapped[str] = mapped_column(sa.String(255), unique=True)
        password_hash: Mapped[str | None] = mapped_column(sa.String(255))
        is_active: Mapped[bool] = mapped_column(default=True)

    class Blocklist(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "bench_fje_blocklist"
        id: Mapped[int] = mapped_column(primary_key=True)
        jti: Mapped[str] = mapped_column(sa.String(36), nullable=False, index=True)

    return db, User, Blocklist


def make_app(
    db: SQLAlchemy,
    User: t.Any,
    url: str,
    options: dict[str, t.Any],
    sync: str,
    secret: str,
    name: str,
    **extra: t.Any,
) -> Flask:
    """One app of the extension, users loaded from memory (log-ins from the
    database); ``extra`` settings on top."""
    app = Flask(name)
    app.config.update(
        SECRET_KEY=secret,
        SQLALCHEMY_DATABASE_URI=url,
        SQLALCHEMY_ENGINE_OPTIONS=options,
        RATELIMIT_ENABLED=False,
        JWT_AUTH_ISSUER=ISSUER,
        JWT_AUTH_SECRET_KEY=secret,
        JWT_AUTH_REVOCATION_SYNC=sync,
        JWT_SECRET_KEY=secret,
        JWT_ENCODE_ISSUER=ISSUER,
        JWT_DECODE_ISSUER=ISSUER,
        **extra,
    )
    db.init_app(app)
    if url.startswith("sqlite"):
        with app.app_context():
            sa.event.listen(db.engine, "connect", pr._sqlite_pragmas)
    ext = JWTAuthentication()

    @ext.user_lookup
    def find_user(username: str) -> t.Any:
        return db.session.execute(
            sa.select(User).filter_by(username=username)
        ).scalar_one_or_none()

    ext.user_loader(lambda uid: ALICE if uid == 1 else None)
    ext.init_app(app, db=db)

    @app.get("/me")
    @jwt_required
    def me() -> dict[str, t.Any]:
        return {"uid": get_jwt()["uid"], "name": current_user.username}

    return app


# Part 1 ------------------------------------------------------------------------------


def hot_path(url: str, options: dict[str, t.Any], plan: pr.Plan, label: str) -> None:
    secret = "s" * 64
    db, User, Blocklist = make_db()
    push = make_app(db, User, url, options, "push", secret, "push")
    database = make_app(db, User, url, options, "database", secret, "database")
    if create_alice(database, db, User):
        with database.app_context():
            db.session.execute(
                sa.insert(Blocklist),
                [{"jti": str(uuid.uuid4())} for _ in range(pr.BLOCKLIST_ROWS)],
            )
            db.session.commit()
    fje = JWTManager(database)

    @fje.token_in_blocklist_loader
    def in_blocklist(header: dict[str, t.Any], payload: dict[str, t.Any]) -> bool:
        found = db.session.execute(
            sa.select(Blocklist.id).filter_by(jti=payload["jti"])
        ).scalar()
        return found is not None

    fje.user_lookup_loader(lambda header, data: ALICE)

    @database.get("/fje")
    @fje_jwt_required()
    def fje_view() -> dict[str, t.Any]:
        return {"uid": fje_current_user.id, "name": fje_current_user.username}

    require = ["exp", "iat", "nbf", "iss", "sub", "jti"]

    @database.get("/floor")
    def floor() -> dict[str, t.Any]:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            abort(401)
        try:
            claims = pyjwt.decode(
                token,
                secret,
                algorithms=["HS256"],
                issuer=ISSUER,
                options={"require": require},
            )
        except pyjwt.InvalidTokenError:
            abort(401)
        user = ALICE if claims["uid"] == 1 else None
        if user is None or not user.is_active:
            abort(401)
        return {"uid": claims["uid"], "name": user.username}

    login = pr.prepare(
        database,
        "POST",
        f"{PREFIX}/tokens",
        json_body={"username": "alice", "password": PASSWORD},
    )
    token = json.loads(pr.expect(login))["access_token"]
    with database.app_context():
        fje_token = create_access_token(identity="1")
    bearer = {"Authorization": f"Bearer {token}"}
    requests = {
        "floor": pr.prepare(database, "GET", "/floor", headers=bearer),
        "push": pr.prepare(push, "GET", "/me", headers=bearer),
        "database": pr.prepare(database, "GET", "/me", headers=bearer),
        "fje": pr.prepare(
            database, "GET", "/fje", headers={"Authorization": f"Bearer {fje_token}"}
        ),
    }
    pr.expect(requests["push"])
    follower = push.extensions["jwt_authentication"].follower
    if follower is not None:
        follower.loaded.wait(5)
        time.sleep(0.3)
    statements: list[str] = []
    main = threading.get_ident()
    with push.app_context():
        engine = db.engine

    def record(*args: t.Any) -> None:
        if threading.get_ident() == main:
            statements.append(args[2])

    samples = pr.timed_rounds(requests, plan.rounds, plan.per_round, plan.warmup)
    sa.event.listen(engine, "before_cursor_execute", record)
    for _ in range(1000):
        pr.expect(requests["push"])
    sa.event.remove(engine, "before_cursor_execute", record)
    medians = {name: pr.summary(pr.flat(rounds))[0] for name, rounds in samples.items()}
    total = plan.rounds * plan.per_round
    print(f"\n== Protected request, HS256 on {label}: {total} per route")
    print(f"   {'route':<10} {'median us':>10} {'p10 us':>9} {'p90 us':>9}")
    for name in ROUTES:
        median, p10, p90 = pr.summary(pr.flat(samples[name]))
        print(f"   {name:<10} {median:>10.1f} {p10:>9.1f} {p90:>9.1f}")
    for num, den, goal in RATIOS:
        value = medians[num] / medians[den]
        low, high = pr.round_ratio_spread(samples, num, den)
        shown = f"<= {goal}: {pr.verdict(value, goal)}" if goal else ""
        print(
            f"   {num}/{den:<10} {value:5.2f}  {shown:<12} rounds {low:.2f}-{high:.2f}"
        )
    print(f"   SQL statements in 1000 push-mode requests: {len(statements)}")
    for app in (push, database):
        dispose(app, db)


def create_alice(app: Flask, db: SQLAlchemy, User: t.Any) -> bool:
    """Create the tables and alice if she is not there; whether she was made."""
    with app.app_context():
        db.create_all()
        if db.session.get(User, 1) is not None:
            return False
        cheap = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
        db.session.add(User(id=1, username="alice", password_hash=cheap))
        db.session.commit()
        return True


def dispose(app: Flask, db: SQLAlchemy) -> None:
    """Stop the app's revocation follower and close its connections."""
    follower = app.extensions["jwt_authentication"].follower
    if follower is not None:
        follower.stop()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


# Part 2 ------------------------------------------------------------------------------


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def serve(url: str, options_json: str, sync: str) -> None:
    """``--serve``: one worker process; prints its port, serves until stdin
    closes."""
    db, User, _ = make_db()
    app = make_app(db, User, url, json.loads(options_json), sync, "s" * 64, "worker")
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
    threading.Thread(
        target=lambda: (sys.stdin.read(), server.shutdown()), daemon=True
    ).start()
    print(server.server_port, flush=True)
    server.serve_forever()


def http_json(
    port: int, method: str, path: str, token: str | None = None, body: t.Any = None
) -> tuple[int, t.Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(
            method,
            path,
            body=json.dumps(body) if body is not None else None,
            headers=headers,
        )
        response = conn.getresponse()
        raw = response.read()
    finally:
        conn.close()
    return response.status, json.loads(raw) if raw else None


def propagation(url: str, options: dict[str, t.Any], count: int, label: str) -> None:
    db, User, _ = make_db()
    setup = make_app(db, User, url, options, "database", "s" * 64, "setup")
    create_alice(setup, db, User)
    dispose(setup, db)
    for sync in ("push", "database"):
        workers = [
            subprocess.Popen(
                [sys.executable, __file__, "--serve", url, json.dumps(options), sync],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        try:
            a, b = (int(t.cast(t.IO[str], w.stdout).readline()) for w in workers)
            delays: list[float] = []
            for i in range(count + 5):
                _, body = http_json(
                    a,
                    "POST",
                    f"{PREFIX}/tokens",
                    body={"username": "alice", "password": PASSWORD},
                )
                token = body["access_token"]
                assert http_json(b, "GET", "/me", token)[0] == 200
                if i == 0:
                    time.sleep(0.5)  # B's follower starts on its first request
                assert http_json(a, "POST", f"{PREFIX}/logout", token)[0] == 204
                done = time.monotonic()
                while http_json(b, "GET", "/me", token)[0] != 401:
                    pass
                if i >= 5:
                    delays.append((time.monotonic() - done) * 1000)
            delays.sort()
            p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
            print(
                f"   {label:<11} {sync:<9} {count} log-outs: delay until B refuses"
                f" median {statistics.median(delays):.1f} ms, p99 {p99:.1f} ms,"
                f" max {delays[-1]:.1f} ms"
            )
        finally:
            for worker in workers:
                t.cast(t.IO[str], worker.stdin).close()
                worker.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--serve", nargs=3, metavar=("URL", "OPTIONS", "SYNC"))
    args = parser.parse_args(argv)
    if args.serve:
        serve(*args.serve)
        return 0
    pr.CALL = pr.call
    plan = pr.QUICK if args.quick else pr.FULL
    print("flask_jwt_authentication: revocation on the hot path and across workers")
    print(pr.versions())
    print(f"flask_jwt_authentication at {pr.source_state()}")
    with tempfile.TemporaryDirectory(prefix="jwt-revocation-") as directory:
        for database in pr.databases(Path(directory)):
            try:
                hot_path(database.url, database.engine_options, plan, database.label)
            finally:
                database.cleanup()
        print("\n== Propagation: log-out on worker A, refused by worker B (processes)")
        Path(directory, "p").mkdir()
        for database in pr.databases(Path(directory, "p")):
            try:
                propagation(
                    database.url,
                    database.engine_options,
                    50 if args.quick else 200,
                    database.kind,
                )
            finally:
                database.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
