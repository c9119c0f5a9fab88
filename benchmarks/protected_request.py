"""What ``@jwt_required`` and the token endpoints cost on the server, measured
side by side with a raw-PyJWT floor and with Flask-JWT-Extended.

    pip install -e '.[benchmark]'
    python benchmarks/protected_request.py [--quick] [--test-client]

Everything runs in this process. Each request is one WSGI call into the
application with a prepared environ (the environ is built outside the timer with
Werkzeug's ``EnvironBuilder``, as Flask's test client builds it), so the time is
the server-side cost: routing, the view, the extension and the database round
trips. ``--test-client`` times ``app.test_client()`` calls instead, which adds the
client's own work to every route alike.

Per algorithm (HS256, RS256, ES256) and database (an SQLite file, always; and
PostgreSQL at ``TEST_POSTGRESQL_URL`` or
``postgresql+psycopg://postgres@127.0.0.1:5432/test`` when reachable, in a schema of
its own that is dropped afterwards) it times five routes returning the same JSON:

- ``bare``: no authentication at all;
- ``floor``: one ``jwt.decode`` (PyJWT, key object loaded once) of our access
  token with the same checks (algorithm, issuer, required exp/iat/nbf/iss/sub/jti),
  then the same user lookup (``db.session.get``) as ours: the floor includes the
  app's own work, so ``ours/floor`` is the extension's overhead over PyJWT plus
  revocation;
- ``ours``: ``@jwt_required`` (revocation checked on every request);
- ``fje``: Flask-JWT-Extended ``@jwt_required()`` with a database blocklist: a
  ``token_in_blocklist_loader`` querying an indexed table of 100,000 random jtis
  through Flask-SQLAlchemy, and the same ``db.session.get`` as user lookup;
- ``fje_noblock``: the same without the blocklist loader (another app, for
  reference).

Our own revoked-jti table is filled with 100,000 random rows too, so both
revocation lookups search tables of the same size. Routes are interleaved in
short rounds (the order rotates each round), after a warm-up; the tables give the
median microseconds per request over every sample, and for each ratio the
quartiles of its per-round values (how steady it was).

Then the token endpoints (HS256, on each database): log-in with a real scrypt
hash against a route doing only the same hash verification (and, for a precise
figure, the absolute overhead measured with a cheap hash, divided by the scrypt
time); refresh with rotation (each request presents the refresh token the
previous one returned) against Flask-JWT-Extended's refresh route (which writes
nothing); and the time to mint one RS256 access token with
``flask_jwt_authentication.tokens.encode``.

SQLite runs in WAL mode with ``synchronous=NORMAL`` (the usual production
settings). Flood limits are off (``RATELIMIT_ENABLED=False``). Users other than
the log-in ones have ``pbkdf2:sha256:1000`` hashes. A full run takes some 5-8
minutes on 2 cores, ``--quick`` about one. This is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import io
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import typing as t
import uuid
from importlib import metadata
from pathlib import Path

import jwt as pyjwt
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from flask import abort
from flask import request
from flask_jwt_extended import JWTManager
from flask_jwt_extended import create_access_token
from flask_jwt_extended import create_refresh_token
from flask_jwt_extended import current_user as fje_current_user
from flask_jwt_extended import get_jwt_identity
from flask_jwt_extended import jwt_required as fje_jwt_required
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from werkzeug.security import check_password_hash
from werkzeug.security import generate_password_hash
from werkzeug.test import EnvironBuilder

from flask_jwt_authentication import JWTAuthentication
from flask_jwt_authentication import current_user
from flask_jwt_authentication import get_jwt
from flask_jwt_authentication import jwt_required
from flask_jwt_authentication import keys as jwt_keys
from flask_jwt_authentication import tokens as jwt_tokens

PREFIX = "/jwt-authentication/api/auth"
PASSWORD = "correct horse battery staple"
HASH_METHOD = "pbkdf2:sha256:1000"
ISSUER = "bench"
ALGORITHMS = ("HS256", "RS256", "ES256")
DEFAULT_POSTGRESQL_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG_SCHEMA = "flask_jwt_auth_bench"
BLOCKLIST_ROWS = 100_000
ROUTES = ("bare", "floor", "ours", "fje", "fje_noblock")

#: goal name -> (numerator, denominator, limit per database kind or None)
RATIO_ROWS: tuple[tuple[str, str, dict[str, float] | None], ...] = (
    ("ours", "floor", {"sqlite": 1.2, "postgresql": 1.5}),
    ("ours", "fje", {"sqlite": 0.6, "postgresql": 0.6}),
    ("ours", "bare", None),
    ("floor", "bare", None),
    ("fje", "bare", None),
    ("fje_noblock", "bare", None),
    ("fje", "fje_noblock", None),
)


@dataclasses.dataclass(frozen=True)
class Plan:
    """How many requests each part makes."""

    rounds: int
    per_round: int
    warmup: int
    refresh_rounds: int
    refresh_per_round: int
    login_rounds: int
    login_per_round: int
    scrypt_logins: int
    mints: int


#: Rounds are short (100 requests per route, the order rotating) so that a burst of
#: load elsewhere on the machine lands on every route alike. Sized for some 2 ms
#: per protected request on SQLite and 4 ms on PostgreSQL (a busy 2-core VM): a
#: full run takes about 7 minutes there, a quick one about one. ``--rounds`` and
#: ``--per-round`` override the protected-route counts.
FULL = Plan(24, 100, 200, 20, 50, 10, 50, 100, 3000)
QUICK = Plan(4, 50, 30, 4, 15, 4, 10, 10, 500)


@dataclasses.dataclass(frozen=True)
class KeyMaterial:
    """Keys made once per run, shared by our extension, the floor and FJE."""

    secret: str
    rsa_private_pem: str
    rsa_public_pem: str
    rsa_public: t.Any
    ec_private_pem: str
    ec_public_pem: str
    ec_public: t.Any

    @classmethod
    def generate(cls) -> KeyMaterial:
        rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ec_key = ec.generate_private_key(ec.SECP256R1())
        return cls(
            secret=secrets.token_urlsafe(48),
            rsa_private_pem=_private_pem(rsa_key),
            rsa_public_pem=_public_pem(rsa_key),
            rsa_public=rsa_key.public_key(),
            ec_private_pem=_private_pem(ec_key),
            ec_public_pem=_public_pem(ec_key),
            ec_public=ec_key.public_key(),
        )

    def ours(self, algorithm: str) -> dict[str, t.Any]:
        """Our extension's settings for ``algorithm``."""
        if algorithm.startswith("HS"):
            return {"JWT_AUTH_ALGORITHM": algorithm, "JWT_AUTH_SECRET_KEY": self.secret}
        pem = (
            self.rsa_private_pem if algorithm.startswith("RS") else self.ec_private_pem
        )
        return {"JWT_AUTH_ALGORITHM": algorithm, "JWT_AUTH_PRIVATE_KEY": pem}

    def fje(self, algorithm: str) -> dict[str, t.Any]:
        """Flask-JWT-Extended's settings for ``algorithm`` (PEM text, as it wants)."""
        config: dict[str, t.Any] = {"JWT_ALGORITHM": algorithm}
        if algorithm.startswith("HS"):
            config["JWT_SECRET_KEY"] = self.secret
        elif algorithm.startswith("RS"):
            config["JWT_PRIVATE_KEY"] = self.rsa_private_pem
            config["JWT_PUBLIC_KEY"] = self.rsa_public_pem
        else:
            config["JWT_PRIVATE_KEY"] = self.ec_private_pem
            config["JWT_PUBLIC_KEY"] = self.ec_public_pem
        return config

    def verifying_key(self, algorithm: str) -> t.Any:
        """The key object the floor verifies with (parsed once, like ours)."""
        if algorithm.startswith("HS"):
            return self.secret
        return self.rsa_public if algorithm.startswith("RS") else self.ec_public


def _private_pem(key: t.Any) -> str:
    return t.cast(
        bytes,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    ).decode("ascii")


def _public_pem(key: t.Any) -> str:
    return t.cast(
        bytes,
        key.public_key().public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        ),
    ).decode("ascii")


# Applications ------------------------------------------------------------------------


@dataclasses.dataclass
class Bench:
    """The applications of one algorithm on one database."""

    app: Flask  # bare, floor, ours, fje and the token endpoints
    noblock_app: Flask  # fje_noblock
    db: SQLAlchemy
    User: t.Any
    Blocklist: t.Any
    password_hashes: dict[str, str]

    def dispose(self) -> None:
        for app in (self.app, self.noblock_app):
            with app.app_context():
                self.db.session.remove()
                self.db.engine.dispose()


def _sqlite_pragmas(dbapi_connection: t.Any, connection_record: t.Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def build_bench(
    database_url: str,
    algorithm: str,
    key_material: KeyMaterial,
    engine_options: dict[str, t.Any],
) -> Bench:
    """Both applications, sharing one Flask-SQLAlchemy object and its models."""

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
        """Flask-JWT-Extended's documented database blocklist."""

        __tablename__ = "bench_fje_blocklist"
        id: Mapped[int] = mapped_column(primary_key=True)
        jti: Mapped[str] = mapped_column(sa.String(36), nullable=False, index=True)
        created_at: Mapped[int] = mapped_column(sa.BigInteger(), nullable=False)

    password_hashes: dict[str, str] = {}

    def base_app(name: str) -> Flask:
        app = Flask(name)
        app.config.update(
            SECRET_KEY=key_material.secret,
            SQLALCHEMY_DATABASE_URI=database_url,
            SQLALCHEMY_ENGINE_OPTIONS=engine_options,
            RATELIMIT_ENABLED=False,
            JWT_AUTH_ISSUER=ISSUER,
            JWT_ENCODE_ISSUER=ISSUER,
            JWT_DECODE_ISSUER=ISSUER,
            **key_material.ours(algorithm),
            **key_material.fje(algorithm),
        )
        db.init_app(app)
        if database_url.startswith("sqlite"):
            with app.app_context():
                sa.event.listen(db.engine, "connect", _sqlite_pragmas)
        return app

    def load_user(uid: t.Any) -> t.Any:
        return db.session.get(User, uid)

    # The main app: bare, floor, ours, fje, and the token endpoints.
    app = base_app("bench")
    ours = JWTAuthentication()

    @ours.user_lookup
    def find_user(username: str) -> t.Any:
        return db.session.execute(
            sa.select(User).filter_by(username=username)
        ).scalar_one_or_none()

    ours.user_loader(load_user)
    ours.init_app(app, db=db)

    fje = JWTManager(app)

    @fje.token_in_blocklist_loader
    def in_blocklist(
        jwt_header: dict[str, t.Any], jwt_payload: dict[str, t.Any]
    ) -> bool:
        found = db.session.execute(
            sa.select(Blocklist.id).filter_by(jti=jwt_payload["jti"])
        ).scalar()
        return found is not None

    @fje.user_lookup_loader
    def fje_user(jwt_header: dict[str, t.Any], jwt_data: dict[str, t.Any]) -> t.Any:
        return load_user(int(jwt_data["sub"]))

    floor_key = key_material.verifying_key(algorithm)
    require = ["exp", "iat", "nbf", "iss", "sub", "jti"]

    @app.get("/bare")
    def bare() -> dict[str, t.Any]:
        return {"uid": 1, "name": "alice"}

    @app.get("/floor")
    def floor() -> dict[str, t.Any]:
        authorization = request.headers.get("Authorization", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            abort(401)
        try:
            claims = pyjwt.decode(
                token,
                floor_key,
                algorithms=[algorithm],
                issuer=ISSUER,
                options={"require": require},
            )
        except pyjwt.InvalidTokenError:
            abort(401)
        user = load_user(claims["uid"])
        if user is None or not user.is_active:
            abort(401)
        return {"uid": claims["uid"], "name": user.username}

    @app.get("/ours")
    @jwt_required
    def ours_view() -> dict[str, t.Any]:
        return {"uid": get_jwt()["uid"], "name": current_user.username}

    @app.get("/fje")
    @fje_jwt_required()
    def fje_view() -> dict[str, t.Any]:
        return {"uid": fje_current_user.id, "name": fje_current_user.username}

    @app.post("/fje/refresh")
    @fje_jwt_required(refresh=True)
    def fje_refresh() -> dict[str, t.Any]:
        return {"access_token": create_access_token(identity=get_jwt_identity())}

    @app.post("/hash-only")
    def hash_only() -> dict[str, t.Any]:
        body = request.get_json()
        if not check_password_hash(password_hashes[body["username"]], body["password"]):
            abort(401)
        return {"ok": True}

    # The reference app: Flask-JWT-Extended without a blocklist.
    noblock_app = base_app("bench-noblock")
    fje_noblock = JWTManager(noblock_app)
    fje_noblock.user_lookup_loader(fje_user)

    @noblock_app.get("/fje_noblock")
    @fje_jwt_required()
    def fje_noblock_view() -> dict[str, t.Any]:
        return {"uid": fje_current_user.id, "name": fje_current_user.username}

    return Bench(app, noblock_app, db, User, Blocklist, password_hashes)


def prepare_database(bench: Bench) -> str:
    """Create the tables, the users and the two 100,000-row revocation tables
    (once per database). Returns a note on what was filled."""
    db, app = bench.db, bench.app
    with app.app_context():
        db.create_all()
        if db.session.execute(sa.select(bench.User.id).limit(1)).first() is None:
            cheap = generate_password_hash(PASSWORD, method=HASH_METHOD)
            db.session.add_all(
                [
                    bench.User(username="alice", password_hash=cheap),
                    bench.User(username="bob", password_hash=cheap),
                    # The log-in part: Werkzeug's default hash (scrypt).
                    bench.User(
                        username="carol", password_hash=generate_password_hash(PASSWORD)
                    ),
                ]
            )
            db.session.commit()
            now = int(time.time())
            db.session.execute(
                sa.insert(bench.Blocklist),
                [
                    {"jti": str(uuid.uuid4()), "created_at": now}
                    for _ in range(BLOCKLIST_ROWS)
                ],
            )
            db.session.commit()
            _fill_our_revocations(db, now)
        for user in db.session.execute(sa.select(bench.User)).scalars():
            bench.password_hashes[user.username] = t.cast(str, user.password_hash)
        return _revocation_note(db)


def _our_revocation_table(db: SQLAlchemy) -> sa.Table | None:
    """The extension's table of revoked jtis: found by its ``jti`` column, so the
    script does not depend on the table's name."""
    for table in db.metadata.sorted_tables:
        if not table.name.startswith("bench_") and "jti" in table.c:
            return table
    return None


def _fill_our_revocations(db: SQLAlchemy, now: int) -> None:
    table = _our_revocation_table(db)
    if table is None:
        return
    row: dict[str, t.Any] = {}
    for column in table.c:
        if column.name == "jti" or column.nullable or column.default is not None:
            continue
        if isinstance(column.type, sa.Integer):
            row[column.name] = now + 86_400
        else:
            return  # a shape this script does not know: leave the table empty
    try:
        db.session.execute(
            sa.insert(table),
            [{"jti": jwt_tokens.new_jti(), **row} for _ in range(BLOCKLIST_ROWS)],
        )
        db.session.commit()
    except sa.exc.SQLAlchemyError:
        db.session.rollback()


def _revocation_note(db: SQLAlchemy) -> str:
    table = _our_revocation_table(db)
    if table is None:
        return "our revoked-jti table: not found, left empty"
    count = db.session.execute(
        sa.select(sa.func.count()).select_from(table)
    ).scalar_one()
    return f"revoked jtis: FJE blocklist {BLOCKLIST_ROWS:,} rows, ours {count:,} rows"


# Requests ----------------------------------------------------------------------------


@dataclasses.dataclass
class Request:
    """A prepared request: the environ and body, built outside the timer."""

    app: Flask
    environ: dict[str, t.Any]
    body: bytes


def prepare(
    app: Flask,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    json_body: t.Any = None,
) -> Request:
    builder = EnvironBuilder(
        path=path, method=method, headers=headers or {}, json=json_body
    )
    try:
        environ = builder.get_environ()
        body = environ["wsgi.input"].read()
    finally:
        builder.close()
    return Request(app, environ, body)


def call(req: Request) -> tuple[float, str, bytes]:
    """One WSGI call: (seconds, status line, body)."""
    environ = dict(req.environ)
    environ["wsgi.input"] = io.BytesIO(req.body)
    status: list[str] = []

    def start_response(line: str, headers: t.Any, exc_info: t.Any = None) -> t.Any:
        status.append(line)
        return None

    start = time.perf_counter()
    iterable = req.app(environ, start_response)
    try:
        body = b"".join(iterable)
    finally:
        if hasattr(iterable, "close"):
            iterable.close()
    elapsed = time.perf_counter() - start
    return elapsed, status[0], body


def call_with_test_client(req: Request) -> tuple[float, str, bytes]:
    """The same request through ``app.test_client()`` (client work included)."""
    client = req.app.test_client()
    environ = dict(req.environ)
    environ["wsgi.input"] = io.BytesIO(req.body)
    start = time.perf_counter()
    response = client.open(environ)
    body = response.get_data()
    elapsed = time.perf_counter() - start
    return elapsed, response.status, body


CALL = call


def expect(req: Request, status: str = "200") -> bytes:
    _, line, body = CALL(req)
    if not line.startswith(status):
        raise SystemExit(
            f"{req.environ['PATH_INFO']}: expected {status}, got {line}: {body[:300]!r}"
        )
    return body


def timed_rounds(
    requests: dict[str, Request], rounds: int, per_round: int, warmup: int
) -> dict[str, list[list[float]]]:
    """Per-request seconds for each route, per round; the routes take turns in
    every round, in an order that rotates from round to round."""
    names = list(requests)
    for name in names:
        for _ in range(warmup):
            expect(requests[name])
    samples: dict[str, list[list[float]]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            req = requests[name]
            out: list[float] = []
            gc.collect()
            for _ in range(per_round):
                elapsed, line, body = CALL(req)
                if line[:3] != "200":
                    raise SystemExit(f"{name}: {line} {body[:300]!r}")
                out.append(elapsed)
            samples[name].append(out)
    return samples


def flat(rounds: list[list[float]]) -> list[float]:
    return [value for values in rounds for value in values]


def round_ratio_spread(
    samples: dict[str, list[list[float]]], num: str, den: str
) -> tuple[float, float]:
    """The quartiles of the ratio of per-round medians: how steady the ratio was."""
    ratios = [
        statistics.median(a) / statistics.median(b)
        for a, b in zip(samples[num], samples[den], strict=True)
    ]
    if len(ratios) < 2:
        return ratios[0], ratios[0]
    q = statistics.quantiles(ratios, n=4)
    return q[0], q[-1]


def us(seconds: float) -> float:
    return seconds * 1e6


def summary(values: list[float]) -> tuple[float, float, float]:
    """(median, p10, p90) in microseconds."""
    q = statistics.quantiles(values, n=10)
    return us(statistics.median(values)), us(q[0]), us(q[-1])


def verdict(value: float, limit: float | None, below: bool = False) -> str:
    if limit is None:
        return ""
    ok = value < limit if below else value <= limit
    return "met" if ok else "MISSED"


# The parts ---------------------------------------------------------------------------


def login_tokens(bench: Bench, username: str = "alice") -> dict[str, t.Any]:
    req = prepare(
        bench.app,
        "POST",
        f"{PREFIX}/tokens",
        json_body={"username": username, "password": PASSWORD},
    )
    return t.cast(dict[str, t.Any], json.loads(expect(req)))


def protected_requests(bench: Bench) -> dict[str, Request]:
    app = bench.app
    ours_token = login_tokens(bench)["access_token"]
    with app.app_context():
        user_id = bench.db.session.execute(
            sa.select(bench.User.id).filter_by(username="alice")
        ).scalar_one()
        fje_token = create_access_token(identity=str(user_id))
    requests = {
        "bare": prepare(app, "GET", "/bare"),
        "floor": prepare(
            app, "GET", "/floor", headers={"Authorization": f"Bearer {ours_token}"}
        ),
        "ours": prepare(
            app, "GET", "/ours", headers={"Authorization": f"Bearer {ours_token}"}
        ),
        "fje": prepare(
            app, "GET", "/fje", headers={"Authorization": f"Bearer {fje_token}"}
        ),
        "fje_noblock": prepare(
            bench.noblock_app,
            "GET",
            "/fje_noblock",
            headers={"Authorization": f"Bearer {fje_token}"},
        ),
    }
    expected = {"uid": user_id, "name": "alice"}
    for name, req in requests.items():
        got = json.loads(expect(req))
        if got != expected:
            raise SystemExit(f"{name} answered {got}, expected {expected}")
    return requests


def protected_part(bench: Bench, kind: str, label: str, plan: Plan) -> None:
    requests = protected_requests(bench)
    started = time.perf_counter()
    samples = timed_rounds(requests, plan.rounds, plan.per_round, plan.warmup)
    took = time.perf_counter() - started
    medians = {name: summary(flat(rounds))[0] for name, rounds in samples.items()}
    total = plan.rounds * plan.per_round
    print(
        f"\n== {label}: {total} requests per route ({plan.rounds} rounds x"
        f" {plan.per_round}, interleaved; {took:.0f} s)"
    )
    print(f"   {'route':<12} {'median us':>10} {'p10 us':>9} {'p90 us':>9}")
    for name in ROUTES:
        median, p10, p90 = summary(flat(samples[name]))
        print(f"   {name:<12} {median:>10.1f} {p10:>9.1f} {p90:>9.1f}")
    print(f"   {'ratio':<19} {'value':>6}  {'goal':<7} {'result':<7} per-round p25-p75")
    for num, den, limits in RATIO_ROWS:
        value = medians[num] / medians[den]
        limit = limits[kind] if limits else None
        goal = f"<= {limit}" if limit is not None else ""
        low, high = round_ratio_spread(samples, num, den)
        print(
            f"   {num + '/' + den:<19} {value:>6.2f}  {goal:<7}"
            f" {verdict(value, limit):<7} {low:.2f}-{high:.2f}"
        )
    extra = medians["ours"] - medians["floor"]
    print(f"   ours - floor: {extra:.1f} us per request")


def login_part(bench: Bench, plan: Plan) -> None:
    app = bench.app

    def body(username: str) -> dict[str, str]:
        return {"username": username, "password": PASSWORD}

    # The absolute overhead, with a cheap hash so that it is not lost in noise.
    cheap = {
        "login": prepare(app, "POST", f"{PREFIX}/tokens", json_body=body("bob")),
        "hash-only": prepare(app, "POST", "/hash-only", json_body=body("bob")),
    }
    samples = timed_rounds(
        cheap, plan.login_rounds, plan.login_per_round, warmup=plan.login_per_round // 5
    )
    cheap_login = summary(flat(samples["login"]))[0]
    cheap_hash = summary(flat(samples["hash-only"]))[0]
    overhead = cheap_login - cheap_hash

    # The goal's own terms: a real scrypt hash, alternating request by request.
    scrypt = {
        "login": prepare(app, "POST", f"{PREFIX}/tokens", json_body=body("carol")),
        "hash-only": prepare(app, "POST", "/hash-only", json_body=body("carol")),
    }
    for req in scrypt.values():
        expect(req)
    real: dict[str, list[float]] = {"login": [], "hash-only": []}
    for i in range(plan.scrypt_logins):
        pair = ("login", "hash-only") if i % 2 == 0 else ("hash-only", "login")
        for name in pair:
            elapsed, line, _ = CALL(scrypt[name])
            if not line.startswith("200"):
                raise SystemExit(f"log-in {name}: {line}")
            real[name].append(elapsed)
    real_login = summary(real["login"])[0]
    real_hash = summary(real["hash-only"])[0]
    direct = (real_login / real_hash - 1) * 100
    derived = overhead / real_hash * 100
    n = plan.scrypt_logins
    print(
        f"   log-in, scrypt ({n} each):  ours {real_login / 1000:.1f} ms,"
        f" hash only {real_hash / 1000:.1f} ms -> overhead {direct:+.1f} %"
        f"  (goal < 5 %: {verdict(direct, 5.0, below=True)})"
    )
    print(
        f"   log-in overhead, cheap hash ({plan.login_rounds}x"
        f"{plan.login_per_round}): ours {cheap_login:.0f} us, hash only"
        f" {cheap_hash:.0f} us -> {overhead:.0f} us = {derived:.2f} % of one"
        f" scrypt verification (goal < 5 %: {verdict(derived, 5.0, below=True)})"
    )


def refresh_part(bench: Bench, kind: str, plan: Plan) -> None:
    app = bench.app
    refresh_token = login_tokens(bench)["refresh_token"]
    with app.app_context():
        user_id = bench.db.session.execute(
            sa.select(bench.User.id).filter_by(username="alice")
        ).scalar_one()
        fje_refresh_token = create_refresh_token(identity=str(user_id))
    fje_req = prepare(
        app,
        "POST",
        "/fje/refresh",
        headers={"Authorization": f"Bearer {fje_refresh_token}"},
    )
    expect(fje_req)

    def ours_once() -> float:
        nonlocal refresh_token
        req = prepare(
            app,
            "POST",
            f"{PREFIX}/refresh",
            json_body={"refresh_token": refresh_token},
        )
        elapsed, line, body = CALL(req)
        if not line.startswith("200"):
            raise SystemExit(f"refresh: {line} {body[:300]!r}")
        refresh_token = json.loads(body)["refresh_token"]
        return elapsed

    def fje_once() -> float:
        elapsed, line, body = CALL(fje_req)
        if not line.startswith("200"):
            raise SystemExit(f"FJE refresh: {line} {body[:300]!r}")
        return elapsed

    runners = {"ours": ours_once, "fje": fje_once}
    for run in runners.values():
        for _ in range(plan.refresh_per_round // 5):
            run()
    samples: dict[str, list[float]] = {"ours": [], "fje": []}
    for r in range(plan.refresh_rounds):
        for name in ("ours", "fje") if r % 2 == 0 else ("fje", "ours"):
            gc.collect()
            samples[name].extend(runners[name]() for _ in range(plan.refresh_per_round))
    ours, fje = summary(samples["ours"])[0], summary(samples["fje"])[0]
    ratio = ours / fje
    print(
        f"   refresh ({plan.refresh_rounds}x{plan.refresh_per_round}, chained):"
        f" ours {ours:.0f} us (rotation written), FJE {fje:.0f} us (nothing"
        f" written) -> ours/fje {ratio:.2f}  (goal <= 2: {verdict(ratio, 2.0)})"
    )


def mint_part(key_material: KeyMaterial, plan: Plan) -> None:
    print("\n== Minting one access token (tokens.encode with the loaded current key)")
    for algorithm in ALGORITHMS:
        config = key_material.ours(algorithm)
        keyset = jwt_keys.load_keyset(config, algorithm)
        key = keyset.current
        claims = {
            "iss": ISSUER,
            "sub": "1",
            "uid": 1,
            "iat": 0,
            "nbf": 0,
            "exp": 0,
            "jti": "",
            "sid": str(uuid.uuid4()),
        }
        ours: list[float] = []
        raw: list[float] = []
        for _ in range(plan.mints):
            now = int(time.time())
            claims.update(iat=now, nbf=now, exp=now + 900, jti=jwt_tokens.new_jti())
            start = time.perf_counter()
            jwt_tokens.encode(claims, key)
            ours.append(time.perf_counter() - start)
            start = time.perf_counter()
            pyjwt.encode(
                claims, key.signing_key, algorithm=algorithm, headers={"kid": key.kid}
            )
            raw.append(time.perf_counter() - start)
        median = summary(ours)[0]
        goal = (
            f"  (goal < 1 ms: {verdict(median, 1000.0, below=True)})"
            if algorithm == "RS256"
            else ""
        )
        print(
            f"   {algorithm}: {median:.0f} us per token ({plan.mints} tokens);"
            f" PyJWT jwt.encode with the same key object {summary(raw)[0]:.0f} us"
            f"{goal}"
        )


# Databases ---------------------------------------------------------------------------


@dataclasses.dataclass
class Database:
    kind: str  # "sqlite" or "postgresql"
    label: str
    url: str
    engine_options: dict[str, t.Any]
    cleanup: t.Callable[[], None]


def sqlite_database(directory: Path) -> Database:
    return Database(
        "sqlite",
        "SQLite (file, WAL, synchronous=NORMAL)",
        f"sqlite:///{directory / 'bench.db'}",
        {},
        lambda: None,
    )


def databases(directory: Path) -> list[Database]:
    """An SQLite file in ``directory``, and PostgreSQL when it is reachable."""
    found = [sqlite_database(directory)]
    postgresql = postgresql_database()
    if postgresql is not None:
        found.append(postgresql)
    return found


def postgresql_database() -> Database | None:
    url = os.environ.get("TEST_POSTGRESQL_URL") or DEFAULT_POSTGRESQL_URL
    shown = sa.engine.make_url(url).render_as_string(hide_password=True)
    admin = sa.create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with admin.begin() as connection:
            version = connection.execute(sa.text("SHOW server_version")).scalar()
            connection.execute(sa.text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
            connection.execute(sa.text(f"CREATE SCHEMA {PG_SCHEMA}"))
    except Exception as e:
        admin.dispose()
        print(
            f"\nNOTE: PostgreSQL at {shown} is not reachable ({type(e).__name__});"
            " its part is skipped. Set TEST_POSTGRESQL_URL to measure it."
        )
        return None

    def cleanup() -> None:
        with admin.begin() as connection:
            connection.execute(sa.text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
        admin.dispose()

    return Database(
        "postgresql",
        f"PostgreSQL {version} ({shown}, schema {PG_SCHEMA})",
        url,
        {"connect_args": {"options": f"-c search_path={PG_SCHEMA}"}},
        cleanup,
    )


def run_database(database: Database, key_material: KeyMaterial, plan: Plan) -> None:
    print(f"\n######## {database.label}")
    for index, algorithm in enumerate(ALGORITHMS):
        bench = build_bench(
            database.url, algorithm, key_material, database.engine_options
        )
        try:
            note = prepare_database(bench)
            if index == 0:
                print(f"   {note}")
            protected_part(
                bench, database.kind, f"{algorithm} on {database.kind}", plan
            )
            if algorithm == "HS256":
                print(f"\n== Token endpoints, HS256 on {database.kind}")
                login_part(bench, plan)
                refresh_part(bench, database.kind, plan)
        finally:
            bench.dispose()


def versions() -> str:
    names = ["Flask", "Flask-SQLAlchemy", "SQLAlchemy", "PyJWT", "Flask-JWT-Extended"]
    parts = [f"Python {platform.python_version()}"]
    for name in names:
        try:
            parts.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{name} ?")
    return ", ".join(parts)


def source_state() -> str:
    """The package's git commit, and whether its working tree differs from it."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "flask_jwt_authentication"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "an unknown revision (no git)"
    return f"{commit}" + (" with uncommitted changes" if dirty else "")


def main(argv: list[str] | None = None) -> int:
    global CALL
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    parser.add_argument(
        "--test-client",
        action="store_true",
        help="time app.test_client() calls instead of bare WSGI calls",
    )
    parser.add_argument("--rounds", type=int, help="rounds of the protected routes")
    parser.add_argument(
        "--per-round", type=int, help="requests per protected route per round"
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.rounds:
        plan = dataclasses.replace(plan, rounds=args.rounds)
    if args.per_round:
        plan = dataclasses.replace(plan, per_round=args.per_round)
    CALL = call_with_test_client if args.test_client else call
    print("flask_jwt_authentication: protected request and token endpoint costs")
    print(versions())
    print(f"flask_jwt_authentication at {source_state()}")
    print(f"{os.cpu_count()} CPUs, {platform.platform()}")
    print(
        "Times are server-side: "
        + ("app.test_client() calls" if args.test_client else "one WSGI call")
        + " per request, median over all samples; routes interleaved in short"
        " rounds."
    )
    print(
        "floor = one PyJWT jwt.decode with the same claim checks + the same user"
        " lookup (db.session.get) as ours, so it includes the app's own work."
    )
    started = time.perf_counter()
    key_material = KeyMaterial.generate()
    with tempfile.TemporaryDirectory(prefix="jwt-bench-") as directory:
        for database in databases(Path(directory)):
            try:
                run_database(database, key_material, plan)
            finally:
                database.cleanup()
    mint_part(key_material, plan)
    print(f"\nTotal {time.perf_counter() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
