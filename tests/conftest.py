"""Shared fixtures: an app factory on a real database, users, keys and helpers.

Databases: SQLite always; PostgreSQL and MariaDB when ``TEST_POSTGRESQL_URL`` and
``TEST_MARIADB_URL`` are set (``.ci/run`` sets them). Without them those tests skip
locally and fail in CI (``CI=true``), so CI never passes by skipping.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import importlib.util
import json
import os
import socket
import sys
import threading
import types
import typing as t
from pathlib import Path

import openapi_conformance
import pytest
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
from flask_jwt_authentication import get_jwt
from flask_jwt_authentication import jwt_required

KEYS = Path(__file__).parent / "keys"
PREFIX = "/jwt-authentication/api/auth"

#: The nine algorithms the contract requires.
ALGORITHMS = [
    "HS256",
    "HS384",
    "HS512",
    "RS256",
    "RS384",
    "RS512",
    "ES256",
    "ES384",
    "ES512",
]
#: The algorithms supported beyond the nine.
EXTRA_ALGORITHMS = ["PS256", "PS384", "PS512", "EdDSA"]

_KEY_FILES = {
    "RS": "rsa2048",
    "PS": "rsa2048",
    "ES256": "ec256",
    "ES384": "ec384",
    "ES512": "ec521",
    "EdDSA": "ed25519",
}

#: A fast hash method for tests; the dummy hash uses the same one.
HASH_METHOD = "pbkdf2:sha256:1000"
PASSWORD = "correct horse battery staple"


@contextlib.contextmanager
def import_file(path: Path, name: str) -> t.Iterator[types.ModuleType]:
    """Import the Python file ``path`` as the module ``name``, for the test's time."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[name]


#: The folder of the examples, put on the import path while one is imported.
EXAMPLES = Path(__file__).parent.parent / "examples"
#: The files under ``examples/`` that examples import (a deployed example needs
#: them beside it).
SHARED_EXAMPLE_MODULES = ("users.py",)


@contextlib.contextmanager
def example_module(filename: str) -> t.Iterator[types.ModuleType]:
    """Import ``examples/<filename>`` under a name of its own, for the test's time.

    The examples are files, not a package: tests import them as a reader would
    run them, with ``examples/`` on the import path (as ``flask --app
    examples/app.py`` and ``python examples/app.py`` put it), and the module they
    share (``examples/users.py``) imported afresh, so that no two examples share
    a ``db``.
    """
    shared = [name.removesuffix(".py") for name in SHARED_EXAMPLE_MODULES]
    for name in shared:
        sys.modules.pop(name, None)
    sys.path.insert(0, str(EXAMPLES))
    try:
        with import_file(
            EXAMPLES / filename,
            "flask_jwt_authentication_example_" + filename.removesuffix(".py"),
        ) as module:
            yield module
    finally:
        sys.path.remove(str(EXAMPLES))
        for name in shared:
            sys.modules.pop(name, None)


def key_path(name: str) -> Path:
    """The path of a test key, e.g. ``key_path("rsa2048")``."""
    return KEYS / f"{name}.pem"


def key_config(algorithm: str) -> dict[str, t.Any]:
    """The ``JWT_AUTH_*`` settings that give ``algorithm`` a valid test key."""
    if algorithm.startswith("HS"):
        return {"JWT_AUTH_ALGORITHM": algorithm, "JWT_AUTH_SECRET_KEY": "k" * 64}
    name = _KEY_FILES.get(algorithm) or _KEY_FILES[algorithm[:2]]
    return {
        "JWT_AUTH_ALGORITHM": algorithm,
        "JWT_AUTH_PRIVATE_KEY": str(key_path(name)),
    }


def _backend_url(name: str) -> str | None:
    return {
        "postgresql": os.environ.get("TEST_POSTGRESQL_URL"),
        "mariadb": os.environ.get("TEST_MARIADB_URL"),
        "redis": os.environ.get("TEST_REDIS_URL"),
    }.get(name)


def require_backend(name: str) -> str:
    """The URL of a backend (``postgresql``, ``mariadb``, ``redis``), or skip
    (locally) / fail (CI) without it."""
    url = _backend_url(name)
    if url:
        return url
    variable = f"TEST_{name.upper()}_URL"
    if os.environ.get("CI"):
        pytest.fail(f"{variable} is not set; CI must test {name}.")
    pytest.skip(f"{name} not configured: set {variable} (.ci/run does) to run this.")


@dataclasses.dataclass
class AppEnv:
    """One test application and its parts."""

    app: Flask
    db: SQLAlchemy
    jwt: JWTAuthentication
    User: t.Any

    def create_user(
        self, username: str = "alice", password: str = PASSWORD, **fields: t.Any
    ) -> t.Any:
        """Insert a user with a (fast) Werkzeug hash and return it."""
        with self.app.app_context():
            user = self.User(
                username=username,
                password_hash=generate_password_hash(password, method=HASH_METHOD),
                **fields,
            )
            self.db.session.add(user)
            self.db.session.commit()
            self.db.session.refresh(user)
            self.db.session.expunge(user)
            return user

    def set_user(self, username: str, **fields: t.Any) -> None:
        """Change columns of a user (``is_active=False``, ``password_hash=None``)."""
        with self.app.app_context():
            self.db.session.execute(
                sa.update(self.User).filter_by(username=username).values(**fields)
            )
            self.db.session.commit()

    def row_counts(self) -> dict[str, int]:
        """Rows per table, to assert that a refused request wrote nothing."""
        with self.app.app_context():
            return {
                name: self.db.session.execute(
                    sa.select(sa.func.count()).select_from(table)
                ).scalar_one()
                for name, table in self.db.metadata.tables.items()
            }

    def table_rows(self, name: str) -> list[dict[str, t.Any]]:
        """Every row of a table, as dicts."""
        with self.app.app_context():
            table = self.db.metadata.tables[name]
            return [
                dict(row._mapping) for row in self.db.session.execute(sa.select(table))
            ]


def build_app(
    database_url: str, *, create_tables: bool = True, **config: t.Any
) -> AppEnv:
    """A complete application: a User model, the extension, protected routes.

    With ``create_tables=False`` the database is left alone, for one that cannot
    be reached.

    Routes: ``/api/me`` (``@jwt_required``), ``/api/optional`` (optional),
    ``/api/admin`` (permission ``administer jwt authentication``), ``/api/async``
    (an async view).
    """

    class Base(DeclarativeBase):
        pass

    db = SQLAlchemy(model_class=Base)

    class User(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "users"
        id: Mapped[int] = mapped_column(primary_key=True)
        username: Mapped[str] = mapped_column(sa.String(255), unique=True)
        password_hash: Mapped[str | None] = mapped_column(sa.String(255))
        is_active: Mapped[bool] = mapped_column(default=True)
        #: Comma-separated role names (examples/recipes.py reads them).
        roles: Mapped[str] = mapped_column(sa.String(255), default="")
        password_changed_at: Mapped[int | None] = mapped_column(sa.BigInteger())

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

    app = Flask("testapp")
    app.config.update(
        TESTING=True,
        # Flood limits are tested on their own (test_limits.py), with this on.
        RATELIMIT_ENABLED=False,
        SECRET_KEY="s" * 64,
        SQLALCHEMY_DATABASE_URI=database_url,
        # SQLite: a busy timeout long enough for a crowded 2-core machine, where
        # 16 racing writers queue for the one write lock.
        SQLALCHEMY_ENGINE_OPTIONS=(
            {"pool_pre_ping": True}
            if not database_url.startswith("sqlite")
            else {"connect_args": {"timeout": 30}}
        ),
    )
    app.config.update(config)
    db.init_app(app)
    jwt.init_app(app, db=db)

    @app.get("/api/me")
    @jwt_required
    def me() -> dict[str, t.Any]:
        return {"uid": get_jwt()["uid"], "username": current_user.username}

    @app.get("/api/optional")
    @jwt_required(optional=True)
    def optional() -> dict[str, t.Any]:
        user = current_user.username if current_user else None
        return {"user": user, "claims": get_jwt()}

    @app.get("/api/admin")
    @jwt_required(permission="administer jwt authentication")
    def admin() -> dict[str, t.Any]:
        return {"ok": True}

    @app.get("/api/async")
    @jwt_required
    async def async_view() -> dict[str, t.Any]:
        return {"uid": get_jwt()["uid"]}

    with app.app_context():
        if database_url.startswith("sqlite"):
            # Tests need no durability; fsync per statement would dominate them.
            sa.event.listen(db.engine, "connect", _fast_sqlite)
        if create_tables and database_url.startswith("sqlite"):
            db.drop_all()
            db.create_all()
        elif create_tables:
            # A server engine: the schema was reset once for the session (see
            # _fresh_server_schemas); an app empties the tables, DDL is slow there.
            db.create_all()
            _empty_tables(db)
    return AppEnv(app=app, db=db, jwt=jwt, User=User)


def _empty_tables(db: SQLAlchemy) -> None:
    """Empty every table and restart the ids, so alice is user 1 again."""
    tables = db.metadata.sorted_tables
    with db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            names = ", ".join(
                connection.dialect.identifier_preparer.quote(t.name) for t in tables
            )
            connection.execute(
                sa.text(f"TRUNCATE TABLE {names} RESTART IDENTITY CASCADE")
            )
            return
        for table in reversed(tables):
            connection.execute(table.delete())
        connection.execute(sa.text("ALTER TABLE users AUTO_INCREMENT = 1"))


def _fast_sqlite(dbapi_connection: t.Any, connection_record: t.Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=OFF")
    cursor.close()


@pytest.fixture(scope="session", autouse=True)
def _fresh_server_schemas() -> None:
    """Drop whatever an earlier run left in the server test databases, once, so
    every table is created with the current schema."""
    urls = {
        os.environ.get(name)
        for name in ("TEST_DATABASE_URL", "TEST_POSTGRESQL_URL", "TEST_MARIADB_URL")
    }
    for url in urls - {None, ""}:
        assert url is not None
        engine = sa.create_engine(url)
        try:
            metadata = sa.MetaData()
            metadata.reflect(engine)
            metadata.drop_all(engine)
        except sa.exc.OperationalError:
            pass  # not reachable: the tests that need it skip or fail themselves
        finally:
            engine.dispose()


@pytest.fixture
def make_app(tmp_path: Path) -> t.Iterator[t.Callable[..., AppEnv]]:
    """``make_app(database_url=None, **config) -> AppEnv``; SQLite by default, or
    ``TEST_DATABASE_URL``.

    Every app made is torn down (sessions removed, engines disposed) after the
    test.
    """
    made: list[AppEnv] = []

    def factory(database_url: str | None = None, **config: t.Any) -> AppEnv:
        # TEST_DATABASE_URL runs the whole suite on another engine (.ci/run does,
        # once per engine). It holds one app's tables at a time: a test's further
        # apps (isolation tests) get SQLite files of their own.
        shared = os.environ.get("TEST_DATABASE_URL") if not made else None
        url = database_url or shared or f"sqlite:///{tmp_path / f'test{len(made)}.db'}"
        env = build_app(url, **config)
        made.append(env)
        return env

    yield factory
    for env in made:
        stop_followers(env.app)
        with env.app.app_context():
            env.db.session.remove()
            env.db.engine.dispose()


def stop_followers(app: Flask) -> None:
    """Stop the threads that follow the revocation log in push mode."""
    state = app.extensions.get("jwt_authentication")
    for follower in (getattr(state, "follower", None), getattr(state, "feed", None)):
        if follower is not None:
            follower.stop()


def http_call(
    port: int,
    method: str,
    path: str,
    *,
    body: dict[str, t.Any] | None = None,
    token: str | None = None,
    timeout: float = 15,
) -> tuple[int, t.Any]:
    """One request to a real server on 127.0.0.1, on a fresh connection.

    :returns: the status and the JSON body (the text if it is not JSON).
    """
    headers = {"Connection": "close"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        raw = response.read()
    finally:
        conn.close()
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode("utf-8", "replace")
    return response.status, parsed


class _QuietHandler(WSGIRequestHandler):
    """No access log line per request; errors are still logged."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@pytest.fixture
def serve() -> t.Iterator[t.Callable[[AppEnv], int]]:
    """``serve(env) -> port``: ``env.app`` on a real threaded HTTP server on
    127.0.0.1, shut down at the end of the test."""
    running: list[tuple[t.Any, threading.Thread]] = []

    def start(env: AppEnv) -> int:
        server = make_server(
            "127.0.0.1", 0, env.app, threaded=True, request_handler=_QuietHandler
        )
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        running.append((server, thread))
        return int(server.server_port)

    yield start
    for server, thread in running:
        server.shutdown()
        server.server_close()
        thread.join(timeout=15)


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each configured database backend in turn."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'backend.db'}"
    return require_backend(request.param)


@pytest.fixture
def env(make_app: t.Callable[..., AppEnv]) -> AppEnv:
    """An HS256 app on SQLite with the user ``alice``."""
    env = make_app()
    env.create_user("alice")
    return env


@pytest.fixture
def client(env: AppEnv) -> t.Any:
    return env.app.test_client()


def login(client: t.Any, username: str = "alice", password: str = PASSWORD) -> t.Any:
    """POST the log-in endpoint; returns the response."""
    return client.post(
        f"{PREFIX}/tokens", json={"username": username, "password": password}
    )


def tokens_for(client: t.Any, username: str = "alice") -> dict[str, t.Any]:
    """Log in and return the token pair (asserting success)."""
    response = login(client, username)
    assert response.status_code == 200, response.get_data(as_text=True)
    return t.cast(dict[str, t.Any], response.get_json())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


#: Where browser tests leave their screenshots (kept by CI with the test output).
SCREENSHOTS = Path(os.environ.get("TEST_OUTPUT_DIR", "test-output")) / "screenshots"


def _chromium_path() -> str:
    """Debian's Chromium (``TEST_CHROMIUM``, else ``/usr/bin/chromium``), or skip
    (locally) / fail (CI) without it: Playwright never downloads a browser here."""
    path = os.environ.get("TEST_CHROMIUM") or "/usr/bin/chromium"
    if Path(path).exists():
        return path
    if os.environ.get("CI"):
        pytest.fail(f"Chromium not found at {path}; .ci/run installs it.")
    pytest.skip("Chromium not installed: `apt-get install chromium` to run this.")


@pytest.fixture
def browser() -> t.Iterator[t.Any]:
    """A headless Chromium driven by Playwright, closed after the test."""
    executable = _chromium_path()
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=executable,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> t.Callable[[t.Any, str], Path]:
    """``screenshot(page, name) -> path``: save a full-page PNG under
    ``test-output/screenshots/<test name>/``."""

    def take(page: t.Any, name: str) -> Path:
        folder = SCREENSHOTS / request.node.name.replace("/", "_")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture(autouse=True)
def _responses_match_the_openapi_document() -> t.Iterator[None]:
    """Every response of the extension's endpoints during the test, in any app,
    matches the app's OpenAPI document (see ``openapi_conformance.py``)."""
    with openapi_conformance.recording() as violations:
        yield
    if violations:
        pytest.fail(
            "Responses the OpenAPI document does not allow:\n" + "\n".join(violations),
            pytrace=False,
        )


def raw_http(port: int, request: bytes, timeout: float = 15) -> tuple[int, t.Any]:
    """Send ``request`` as is (for bodies no HTTP client library would send);
    the status and the JSON body (the text if it is not JSON)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        body = _dechunk(body)
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode("utf-8", "replace")


def _dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, body = out + body[:size], body[size + 2 :]
    return out


#: A request whose chunked body has a chunk size that is not hexadecimal.
def malformed_chunked(path: str, content_type: str = "application/json") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}"
        "\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n"
        '{"a": 1}\r\n0\r\n\r\n'
    ).encode()
