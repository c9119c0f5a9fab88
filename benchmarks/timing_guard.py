"""How long each kind of failed log-in takes: the timing guard, measured.

    python benchmarks/timing_guard.py [--samples 300] [--warmup 5]

Serves a small application on a threaded Werkzeug server on 127.0.0.1 (in this
process; SQLite in a temporary directory; flood limits off) whose users have real
default Werkzeug hashes (scrypt) and whose extension keeps its default dummy hash,
then times ``POST /tokens`` for six failure classes, in round-robin order so that
drift (CPU frequency, other load) touches every class alike:

- unknown user: no such username;
- wrong password: an existing, active user;
- disabled user: ``is_active`` false, right password;
- empty hash: the stored hash is ``""``;
- unusable hash: the stored hash is ``"not-a-hash"``;
- outdated parameters: a wrong password for a user whose hash has older, cheaper
  parameters (``pbkdf2:sha256:50000``), which the guard pads to the current cost.

It prints the median per class and its ratio to the wrong-password median, and
counts the hash verifications each attempt made (a counting wrapper around the
default verifier). It exits non-zero unless every median is within
max(5 ms, 10 %) of every other and every attempt verified exactly one hash (an
unreadable hash adds the dummy's verification to its fast refusal, which costs
no hash work). Every response is checked to be the same 401.

Each request costs one scrypt verification (about 0.05-0.2 s on a typical core), so
the default 300 samples per class (1800 requests) take some 2-5 minutes; pass
``--samples`` for a quicker, rougher run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import statistics
import sys
import tempfile
import threading
import time
import typing as t
from pathlib import Path

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
from flask_jwt_authentication.passwords import werkzeug_needs_rehash
from flask_jwt_authentication.passwords import werkzeug_verifier

PREFIX = "/jwt-authentication/api/auth"
PASSWORD = "correct horse battery staple"

#: class name -> (username, password); "wrong password" is the reference.
CLASSES: dict[str, tuple[str, str]] = {
    "unknown user": ("nobody", PASSWORD),
    "wrong password": ("alice", "not the password"),
    "disabled user": ("disabled", PASSWORD),
    "empty hash": ("empty", PASSWORD),
    "unusable hash": ("broken", PASSWORD),
    "outdated parameters": ("old", "not the password"),
}
#: The older, cheaper parameters of the "outdated parameters" user.
OLD_METHOD = "pbkdf2:sha256:50000"
#: Hash verifications per attempt that did hash work; "unusable hash" also calls
#: the verifier once on its unreadable hash, which refuses it without hashing.
VERIFICATIONS = {name: 1 for name in CLASSES} | {"unusable hash": 2}
HASHING = {name: 1 for name in CLASSES}

#: How many times the verifier ran, and on how many hashes it did hash work.
counts = {"calls": 0, "hashed": 0}
REFERENCE = "wrong password"


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def build_app(database_url: str) -> Flask:
    """The application: a User model, the extension with its defaults, limits off."""

    class Base(DeclarativeBase):
        pass

    db = SQLAlchemy(model_class=Base)

    class User(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "users"
        id: Mapped[int] = mapped_column(primary_key=True)
        username: Mapped[str] = mapped_column(sa.String(255), unique=True)
        password_hash: Mapped[str | None] = mapped_column(sa.String(255))
        is_active: Mapped[bool] = mapped_column(default=True)

    jwt = JWTAuthentication()

    def counting_verifier(stored_hash: str, password: str) -> bool:
        counts["calls"] += 1
        result = werkzeug_verifier(stored_hash, password)  # raises before hashing
        counts["hashed"] += 1
        return result

    @jwt.user_lookup
    def find_user(username: str) -> t.Any:
        return db.session.execute(
            sa.select(User).filter_by(username=username)
        ).scalar_one_or_none()

    @jwt.user_loader
    def load_user(uid: t.Any) -> t.Any:
        return db.session.get(User, uid) if isinstance(uid, int) else None

    app = Flask("timing_guard")
    app.config.update(
        SECRET_KEY="s" * 64,
        SQLALCHEMY_DATABASE_URI=database_url,
        RATELIMIT_ENABLED=False,
    )
    db.init_app(app)
    jwt.init_app(app, db=db)
    # The default verifier, counted; the dummy stays the one init_app made.
    jwt.password_verifier(
        counting_verifier,
        dummy_hash=jwt.dummy_password_hash,
        hasher=generate_password_hash,
        needs_rehash=werkzeug_needs_rehash,
    )
    with app.app_context():
        db.create_all()
        real_hash = generate_password_hash(PASSWORD)  # Werkzeug's default: scrypt
        db.session.add_all(
            [
                User(username="alice", password_hash=real_hash),
                User(username="disabled", password_hash=real_hash, is_active=False),
                User(username="empty", password_hash=""),
                User(username="broken", password_hash="not-a-hash"),
                User(
                    username="old",
                    password_hash=generate_password_hash(PASSWORD, OLD_METHOD),
                ),
            ]
        )
        db.session.commit()
        print(f"user hash method: {real_hash.split('$', 1)[0]}")
        print(f"dummy hash method: {jwt.dummy_password_hash.split('$', 1)[0]}")
    return app


class Client:
    """One keep-alive HTTP/1.1 connection to the server."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def login(self, username: str, password: str) -> tuple[int, bytes, float]:
        """POST a log-in; the status, the body and the seconds it took."""
        body = json.dumps({"username": username, "password": password}).encode()
        headers = {"Content-Type": "application/json"}
        start = time.perf_counter()
        self.conn.request("POST", f"{PREFIX}/tokens", body=body, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        elapsed = time.perf_counter() - start
        if response.getheader("Connection", "").lower() == "close":
            self.conn.close()
        return response.status, data, elapsed

    def close(self) -> None:
        self.conn.close()


def measure(port: int, samples: int, warmup: int) -> dict[str, list[float]]:
    client = Client(port)
    times: dict[str, list[float]] = {name: [] for name in CLASSES}
    expected: tuple[int, bytes] | None = None
    try:
        for round_ in range(warmup + samples):
            for name, (username, password) in CLASSES.items():
                before = dict(counts)
                status, body, elapsed = client.login(username, password)
                calls = counts["calls"] - before["calls"]
                hashed = counts["hashed"] - before["hashed"]
                if calls != VERIFICATIONS[name] or hashed != HASHING[name]:
                    raise SystemExit(
                        f"{name}: {calls} verifier calls, {hashed} hashed;"
                        f" expected {VERIFICATIONS[name]} and {HASHING[name]}"
                    )
                if expected is None:
                    expected = (status, body)
                if status != 401 or (status, body) != expected:
                    raise SystemExit(f"{name}: unexpected answer {status} {body!r}")
                if round_ >= warmup:
                    times[name].append(elapsed)
    finally:
        client.close()
    return times


def report(times: dict[str, list[float]]) -> bool:
    """Print the table; whether every median is within max(5 ms, 10 %) of every
    other."""
    reference = statistics.median(times[REFERENCE])
    print(
        f"{'class':<21}{'n':>6}{'median ms':>12}{'p10 ms':>10}{'p90 ms':>10}"
        f"{'ratio':>8}{'hashes':>8}"
    )
    medians = {}
    for name, values in times.items():
        median = medians[name] = statistics.median(values)
        deciles = statistics.quantiles(values, n=10)
        print(
            f"{name:<21}{len(values):>6}{median * 1000:>12.2f}"
            f"{deciles[0] * 1000:>10.2f}{deciles[-1] * 1000:>10.2f}"
            f"{median / reference:>8.3f}{HASHING[name]:>8}"
        )
    low, high = min(medians.values()), max(medians.values())
    allowed = max(0.005, 0.10 * low)
    within = high - low <= allowed
    print(
        f"spread {1000 * (high - low):.2f} ms (allowed {1000 * allowed:.2f} ms):"
        f" {'OK' if within else 'TOO WIDE'}; one hash per attempt: OK"
    )
    return within


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--samples", type=int, default=300, help="timed requests per class (300)"
    )
    parser.add_argument(
        "--warmup", type=int, default=5, help="untimed rounds first (5)"
    )
    args = parser.parse_args(argv)
    # One "stored password hash cannot be verified" warning per unusable-hash
    # request would drown the report.
    logging.getLogger("flask_jwt_authentication").setLevel(logging.ERROR)
    if args.samples < 2:
        parser.error("--samples must be at least 2")
    with tempfile.TemporaryDirectory() as tmp:
        app = build_app(f"sqlite:///{Path(tmp) / 'bench.db'}")
        server = make_server(
            "127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler
        )
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            print(
                f"{args.samples} samples per class, round-robin, after"
                f" {args.warmup} warm-up rounds; server on 127.0.0.1:{server.port}"
            )
            sys.stdout.flush()
            start = time.perf_counter()
            times = measure(server.port, args.samples, args.warmup)
            total = time.perf_counter() - start
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)
        within = report(times)
        requests = (args.samples + args.warmup) * len(CLASSES)
        print(f"total {total:.1f} s for {requests} requests")
        if not within:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
