"""The extension object: wiring, per-app state, validation at start-up, callbacks
(docs/api.rst: the extension object and its callbacks)."""

from __future__ import annotations

import base64
import json
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import HASH_METHOD
from conftest import PASSWORD
from conftest import PREFIX
from conftest import AppEnv
from conftest import bearer
from conftest import key_path
from conftest import login
from conftest import tokens_for
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from werkzeug.security import generate_password_hash

import flask_jwt_authentication
from flask_jwt_authentication import JWTAuthentication
from flask_jwt_authentication import current_user
from flask_jwt_authentication import get_jwt
from flask_jwt_authentication import jwt_required
from flask_jwt_authentication.errors import ConfigurationError

EXTENSION_TABLES = {
    "jwt_auth_sessions",
    "jwt_auth_refresh_tokens",
    "jwt_auth_revoked_tokens",
}


def claims_of(token: str) -> dict[str, t.Any]:
    segment = token.split(".")[1]
    return t.cast(
        dict[str, t.Any],
        json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))),
    )


class Wiring:
    """One ``db``, one ``User`` model and one extension object, for apps built by
    hand (the ``make_app`` fixture builds a new extension per app)."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path

        class Base(DeclarativeBase):
            pass

        self.db = SQLAlchemy(model_class=Base)
        db = self.db

        class User(db.Model):  # type: ignore[name-defined,misc]
            __tablename__ = "users"
            id: Mapped[int] = mapped_column(primary_key=True)
            username: Mapped[str] = mapped_column(sa.String(255), unique=True)
            password_hash: Mapped[str | None] = mapped_column(sa.String(255))

        self.User = User
        self.apps: list[Flask] = []

    def flask_app(self, name: str = "app", **config: t.Any) -> Flask:
        """A Flask app with ``db`` initialised and a protected ``/api/me``."""
        app = Flask(name)
        app.config.update(
            TESTING=True,
            SECRET_KEY="s" * 64,
            SQLALCHEMY_DATABASE_URI=f"sqlite:///{self.tmp_path / name}.db",
        )
        app.config.update(config)
        self.db.init_app(app)
        self.apps.append(app)

        @app.get("/api/me")
        @jwt_required
        def me() -> dict[str, t.Any]:
            return {"uid": get_jwt()["uid"], "username": current_user.username}

        return app

    def wire(self, jwt: JWTAuthentication) -> None:
        db, User = self.db, self.User

        @jwt.user_lookup
        def find_user(username: str) -> t.Any:
            return db.session.execute(
                sa.select(User).filter_by(username=username)
            ).scalar_one_or_none()

        @jwt.user_loader
        def load_user(uid: t.Any) -> t.Any:
            return db.session.get(User, uid) if isinstance(uid, int) else None

    def create_all(self, app: Flask, *usernames: str) -> None:
        with app.app_context():
            self.db.create_all()
            for username in usernames:
                self.db.session.add(
                    self.User(
                        username=username,
                        password_hash=generate_password_hash(
                            PASSWORD, method=HASH_METHOD
                        ),
                    )
                )
            self.db.session.commit()

    def close(self) -> None:
        for app in self.apps:
            with app.app_context():
                self.db.session.remove()
                self.db.engine.dispose()


@pytest.fixture
def wiring(tmp_path: Path) -> t.Iterator[Wiring]:
    w = Wiring(tmp_path)
    yield w
    w.close()


def login_at(client: t.Any, prefix: str, username: str = "alice") -> t.Any:
    return client.post(
        f"{prefix}/tokens", json={"username": username, "password": PASSWORD}
    )


# One object, many apps ------------------------------------------------------------


def test_one_extension_two_apps(wiring):
    jwt = JWTAuthentication()
    wiring.wire(jwt)
    a = wiring.flask_app(
        "app_a",
        JWT_AUTH_SECRET_KEY="a" * 64,
        JWT_AUTH_ISSUER="issuer-a",
        JWT_AUTH_URL_PREFIX="/a/auth",
    )
    b = wiring.flask_app(
        "app_b",
        JWT_AUTH_SECRET_KEY="b" * 64,
        JWT_AUTH_ISSUER="issuer-b",
        JWT_AUTH_URL_PREFIX="/b/auth",
        JWT_AUTH_ACCESS_TOKEN_TTL=60,
    )
    jwt.init_app(a)
    jwt.init_app(b)
    wiring.create_all(a, "alice")
    wiring.create_all(b, "alice")

    # Nothing about an app is kept on the extension object.
    assert not hasattr(jwt, "app")
    state_a = a.extensions["jwt_authentication"]
    state_b = b.extensions["jwt_authentication"]
    assert state_a is not state_b
    assert state_a.extension is jwt
    assert state_b.extension is jwt
    assert state_a.settings.issuer == "issuer-a"
    assert state_b.settings.issuer == "issuer-b"

    ca, cb = a.test_client(), b.test_client()
    # Each app serves its own prefix only.
    assert login_at(ca, "/b/auth").status_code == 404
    assert login_at(cb, "/a/auth").status_code == 404
    ra, rb = login_at(ca, "/a/auth"), login_at(cb, "/b/auth")
    assert ra.status_code == 200, ra.get_data(as_text=True)
    assert rb.status_code == 200, rb.get_data(as_text=True)
    pa, pb = ra.get_json(), rb.get_json()
    assert pa["expires_in"] == 900
    assert pb["expires_in"] == 60
    assert claims_of(pa["access_token"])["iss"] == "issuer-a"
    assert claims_of(pb["access_token"])["iss"] == "issuer-b"

    # Each accepts its own tokens and refuses the other's.
    assert ca.get("/api/me", headers=bearer(pa["access_token"])).status_code == 200
    assert cb.get("/api/me", headers=bearer(pb["access_token"])).status_code == 200
    assert ca.get("/api/me", headers=bearer(pb["access_token"])).status_code == 401
    assert cb.get("/api/me", headers=bearer(pa["access_token"])).status_code == 401
    r = cb.post("/b/auth/refresh", json={"refresh_token": pa["refresh_token"]})
    assert r.status_code == 401
    assert r.get_json()["error"] == "invalid_grant"

    # Logging out of one app leaves the other's session alone.
    assert (
        ca.post("/a/auth/logout", headers=bearer(pa["access_token"])).status_code == 204
    )
    assert ca.get("/api/me", headers=bearer(pa["access_token"])).status_code == 401
    assert cb.get("/api/me", headers=bearer(pb["access_token"])).status_code == 200


def test_same_secret_other_issuer_is_refused(wiring):
    """A shared secret does not make the apps trust each other: the issuer is per
    app."""
    jwt = JWTAuthentication()
    wiring.wire(jwt)
    a = wiring.flask_app("iss_a", JWT_AUTH_ISSUER="issuer-a")
    b = wiring.flask_app("iss_b", JWT_AUTH_ISSUER="issuer-b")
    jwt.init_app(a)
    jwt.init_app(b)
    wiring.create_all(a, "alice")
    wiring.create_all(b, "alice")
    ca, cb = a.test_client(), b.test_client()
    pa = login_at(ca, PREFIX).get_json()
    r = cb.get("/api/me", headers=bearer(pa["access_token"]))
    assert r.status_code == 401
    assert r.get_json()["error_description"] == "The token has another issuer."


def test_same_settings_separate_databases(wiring):
    """Same secret and issuer: a token of one app still names a session the other
    never saw."""
    jwt = JWTAuthentication()
    wiring.wire(jwt)
    a = wiring.flask_app("same_a", JWT_AUTH_ISSUER="same")
    b = wiring.flask_app("same_b", JWT_AUTH_ISSUER="same")
    jwt.init_app(a)
    jwt.init_app(b)
    wiring.create_all(a, "alice")
    wiring.create_all(b, "alice")
    pa = login_at(a.test_client(), PREFIX).get_json()
    r = b.test_client().get("/api/me", headers=bearer(pa["access_token"]))
    assert r.status_code == 401
    assert r.get_json()["error"] == "invalid_token"


# init_app --------------------------------------------------------------------------


def test_second_init_app_raises(wiring):
    jwt = JWTAuthentication()
    app = wiring.flask_app()
    jwt.init_app(app)
    state = app.extensions["jwt_authentication"]
    with pytest.raises(RuntimeError, match="already initialised"):
        jwt.init_app(app)
    with pytest.raises(RuntimeError, match="already initialised"):
        JWTAuthentication().init_app(app)
    assert app.extensions["jwt_authentication"] is state


def test_init_app_finds_the_apps_sqlalchemy(wiring):
    jwt = JWTAuthentication()
    wiring.wire(jwt)
    app = wiring.flask_app()
    jwt.init_app(app)
    assert app.extensions["jwt_authentication"].db is wiring.db
    wiring.create_all(app, "alice")
    client = app.test_client()
    token = login_at(client, PREFIX).get_json()["access_token"]
    assert client.get("/api/me", headers=bearer(token)).status_code == 200


def test_init_app_without_flask_sqlalchemy():
    app = Flask("bare")
    app.config["SECRET_KEY"] = "s" * 64
    with pytest.raises(RuntimeError, match="Flask-SQLAlchemy"):
        JWTAuthentication().init_app(app)
    assert "jwt_authentication" not in app.extensions
    with pytest.raises(RuntimeError, match="Flask-SQLAlchemy"):
        JWTAuthentication(app)


def test_constructor_with_app(wiring):
    app = wiring.flask_app()
    jwt = JWTAuthentication(app, db=wiring.db)
    wiring.wire(jwt)
    assert app.extensions["jwt_authentication"].extension is jwt
    wiring.create_all(app, "alice")
    client = app.test_client()
    pair = tokens_for(client)
    assert (
        client.get("/api/me", headers=bearer(pair["access_token"])).status_code == 200
    )


def test_init_app_creates_no_tables(wiring):
    app = wiring.flask_app()
    JWTAuthentication().init_app(app, db=wiring.db)
    with app.app_context():
        assert sa.inspect(wiring.db.engine).get_table_names() == []
        wiring.db.create_all()
        assert set(sa.inspect(wiring.db.engine).get_table_names()) >= EXTENSION_TABLES


def test_tables_are_on_the_apps_metadata(wiring):
    app = wiring.flask_app()
    JWTAuthentication().init_app(app, db=wiring.db)
    assert set(wiring.db.metadata.tables) >= EXTENSION_TABLES


# Configuration errors at start-up -----------------------------------------------------


BAD_CONFIG = {
    "unknown algorithm": ({"JWT_AUTH_ALGORITHM": "HS999"}, "JWT_AUTH_ALGORITHM"),
    "none algorithm": ({"JWT_AUTH_ALGORITHM": "none"}, "JWT_AUTH_ALGORITHM"),
    "short secret": ({"JWT_AUTH_SECRET_KEY": "too-short"}, "JWT_AUTH_SECRET_KEY"),
    "short SECRET_KEY": ({"SECRET_KEY": "x" * 31}, "SECRET_KEY"),
    "no secret": ({"SECRET_KEY": None}, "JWT_AUTH_SECRET_KEY"),
    "HS512 secret under 64 bytes": (
        {"JWT_AUTH_ALGORITHM": "HS512", "JWT_AUTH_SECRET_KEY": "k" * 63},
        "JWT_AUTH_SECRET_KEY",
    ),
    "RSA 1024": (
        {
            "JWT_AUTH_ALGORITHM": "RS256",
            "JWT_AUTH_PRIVATE_KEY": str(key_path("rsa1024")),
        },
        "1024-bit",
    ),
    "mismatched public key": (
        {
            "JWT_AUTH_ALGORITHM": "RS256",
            "JWT_AUTH_PRIVATE_KEY": str(key_path("rsa2048")),
            "JWT_AUTH_PUBLIC_KEY": str(key_path("rsa2048-other.pub")),
        },
        "JWT_AUTH_PUBLIC_KEY does not match",
    ),
    "missing private key": ({"JWT_AUTH_ALGORITHM": "ES256"}, "JWT_AUTH_PRIVATE_KEY"),
    "EC key for RSA": (
        {
            "JWT_AUTH_ALGORITHM": "RS256",
            "JWT_AUTH_PRIVATE_KEY": str(key_path("ec256")),
        },
        "JWT_AUTH_PRIVATE_KEY",
    ),
    "unreadable key file": (
        {
            "JWT_AUTH_ALGORITHM": "RS256",
            "JWT_AUTH_PRIVATE_KEY": "/nonexistent/key.pem",
        },
        "JWT_AUTH_PRIVATE_KEY",
    ),
    "garbage PEM": (
        {
            "JWT_AUTH_ALGORITHM": "ES256",
            "JWT_AUTH_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----\nAAAA\n"
            "-----END PRIVATE KEY-----\n",
        },
        "JWT_AUTH_PRIVATE_KEY",
    ),
}


@pytest.mark.parametrize(
    ("config", "message"), BAD_CONFIG.values(), ids=BAD_CONFIG.keys()
)
def test_invalid_configuration_fails_at_init_app(wiring, config, message):
    app = wiring.flask_app()
    app.config.update(config)
    jwt = JWTAuthentication()
    with pytest.raises(ConfigurationError, match=message):
        jwt.init_app(app)
    # Nothing half-registered: the app can be fixed and initialised again.
    assert "jwt_authentication" not in app.extensions
    assert "jwt_authentication" not in app.blueprints


def test_configuration_error_is_a_runtime_error():
    assert issubclass(ConfigurationError, RuntimeError)


def test_valid_asymmetric_pair_is_accepted(wiring):
    app = wiring.flask_app(
        JWT_AUTH_ALGORITHM="RS256",
        JWT_AUTH_PRIVATE_KEY=key_path("rsa2048").read_text(),
        JWT_AUTH_PUBLIC_KEY=str(key_path("rsa2048.pub")),
    )
    JWTAuthentication().init_app(app)
    assert app.extensions["jwt_authentication"].settings.algorithm == "RS256"


# The package root ------------------------------------------------------------------


def test_package_exports_exactly_the_documented_names():
    """docs/api.rst: the extension, the decorator and its helpers, the errors an
    application catches, the permission names and the default checker."""
    expected = {
        "JWTAuthentication",
        "jwt_required",
        "current_user",
        "get_jwt",
        "TokenRejected",
        "signals",
        "ConfigurationError",
        "InvalidToken",
        "ACCESS_PERMISSION",
        "USE_PERMISSION",
        "ADMINISTER_PERMISSION",
        "default_permission_checker",
    }
    assert set(flask_jwt_authentication.__all__) == expected
    namespace: dict[str, t.Any] = {}
    exec("from flask_jwt_authentication import *", namespace)  # noqa: S102
    assert set(namespace) - {"__builtins__"} == expected
    from flask_jwt_authentication import signals

    assert signals.__name__ == "flask_jwt_authentication.signals"
    for name in ("jwt_created", "jwt_encoded", "jwt_decoded"):
        assert hasattr(signals, name)
    from werkzeug.exceptions import Unauthorized

    assert issubclass(flask_jwt_authentication.TokenRejected, Unauthorized)


# Callbacks ---------------------------------------------------------------------------


def test_callback_decorators_return_the_function():
    jwt = JWTAuthentication()

    def f(*args: t.Any) -> t.Any:
        return None

    assert jwt.user_lookup(f) is f
    assert jwt.user_loader(f) is f
    assert jwt.user_identity(f) is f
    assert jwt.permission_checker(f) is f
    assert jwt.password_verifier(f) is f
    assert jwt.password_verifier(dummy_hash="x$y")(f) is f


def session_count(wiring: Wiring, app: Flask) -> int:
    with app.app_context():
        return wiring.db.session.execute(
            sa.select(sa.func.count()).select_from(
                wiring.db.metadata.tables["jwt_auth_sessions"]
            )
        ).scalar_one()


def assert_misconfigured(response: t.Any, caplog: t.Any, decorator: str) -> None:
    """A JSON 500 ``server_error`` that tells the client nothing of the cause,
    and an error in the log that names the decorator to apply."""
    assert response.status_code == 500
    assert response.mimetype == "application/json"
    assert response.get_json() == {
        "error": "server_error",
        "error_description": "The authentication service is not set up"
        " completely; the server log says what is missing.",
    }
    messages = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any(f"with @jwt.{decorator}." in m for m in messages), messages


def test_missing_user_lookup_is_a_clear_error(wiring, caplog):
    jwt = JWTAuthentication()
    app = wiring.flask_app()
    jwt.init_app(app)
    wiring.create_all(app, "alice")
    assert jwt.missing_callbacks() == ["user_lookup", "user_loader"]
    client = app.test_client()
    for method, path in [
        ("POST", "/tokens"),
        ("POST", "/refresh"),
        ("POST", "/logout"),
        ("GET", "/sessions"),
        ("GET", "/.well-known/jwks.json"),
    ]:
        caplog.clear()
        response = client.open(
            path if path.startswith("/.") else PREFIX + path,
            method=method,
            json={"username": "alice"},
        )
        assert_misconfigured(response, caplog, "user_lookup")
        assert_misconfigured(response, caplog, "user_loader")
    assert session_count(wiring, app) == 0
    # A wrong method is still a 405; the application's own routes are its own.
    assert client.get(PREFIX + "/tokens").status_code == 405
    assert client.get("/api/me").status_code == 401


def test_missing_user_loader_issues_no_tokens(wiring, caplog):
    """With a user lookup but no user loader, a log-in would give tokens that
    every protected route refuses: none are issued."""
    jwt = JWTAuthentication()
    db, User = wiring.db, wiring.User

    @jwt.user_lookup
    def find_user(username: str) -> t.Any:
        return db.session.execute(
            sa.select(User).filter_by(username=username)
        ).scalar_one_or_none()

    app = wiring.flask_app()
    jwt.init_app(app)
    wiring.create_all(app, "alice")
    assert jwt.missing_callbacks() == ["user_loader"]
    client = app.test_client()
    assert_misconfigured(login_at(client, PREFIX), caplog, "user_loader")
    assert session_count(wiring, app) == 0

    # A token issued elsewhere (an app of the same configuration that has its
    # loader) gets the same JSON 500 on a protected route, not an HTML page.
    other = JWTAuthentication()
    wiring.wire(other)
    other_app = wiring.flask_app(
        "app", SQLALCHEMY_DATABASE_URI=app.config["SQLALCHEMY_DATABASE_URI"]
    )
    other.init_app(other_app)
    token = login_at(other_app.test_client(), PREFIX).get_json()["access_token"]
    caplog.clear()
    response = client.get("/api/me", headers=bearer(token))
    assert_misconfigured(response, caplog, "user_loader")

    # Once registered, the same app works without a restart.
    @jwt.user_loader
    def load_user(uid: t.Any) -> t.Any:
        return db.session.get(User, uid)

    assert jwt.missing_callbacks() == []
    token = login_at(client, PREFIX).get_json()["access_token"]
    assert client.get("/api/me", headers=bearer(token)).status_code == 200


def test_misspelt_setting_is_named_at_init_app(wiring, caplog):
    jwt = JWTAuthentication()
    wiring.wire(jwt)
    app = wiring.flask_app(JWT_AUTH_ACESS_TOKEN_TTL=60, JWT_AUTH_FROBNICATE=1)
    jwt.init_app(app)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        "JWT_AUTH_ACESS_TOKEN_TTL is not a setting and is ignored; did you mean"
        " JWT_AUTH_ACCESS_TOKEN_TTL?",
        "JWT_AUTH_FROBNICATE is not a setting and is ignored.",
    ]


def test_every_documented_setting_is_known(wiring, caplog):
    """No warning for any documented key: the known names are those with a
    default, and tests/test_docs.py holds the defaults and the documentation
    to the same set, so a setting added later is known at once."""
    from test_docs import documented_keys

    from flask_jwt_authentication.config import DEFAULTS
    from flask_jwt_authentication.config import misspelt_keys

    assert "JWT_AUTH_SESSION_MAX_AGE" in documented_keys()
    assert misspelt_keys(dict.fromkeys(documented_keys())) == {}
    jwt = JWTAuthentication()
    wiring.wire(jwt)
    app = wiring.flask_app(**DEFAULTS)
    app.config.update(SECRET_KEY="s" * 64)
    jwt.init_app(app)
    assert [r for r in caplog.records if r.levelname == "WARNING"] == []


def toy_hash(password: str) -> str:
    """A deliberately non-Werkzeug scheme for the verifier tests."""
    return "toy$" + password[::-1]


def test_custom_password_verifier_and_dummy_hash(env: AppEnv):
    calls: list[tuple[str, str]] = []
    dummy = toy_hash("dummy password")

    @env.jwt.password_verifier(dummy_hash=dummy)
    def verify(stored_hash: str, password: str) -> bool:
        calls.append((stored_hash, password))
        if not stored_hash.startswith("toy$"):
            raise ValueError("not a toy hash")
        return stored_hash == toy_hash(password)

    assert env.jwt.dummy_password_hash == dummy
    env.set_user("alice", password_hash=toy_hash("s3cret!"))
    client = env.app.test_client()

    r = login(client, "alice", "s3cret!")
    assert r.status_code == 200, r.get_data(as_text=True)
    assert calls == [(toy_hash("s3cret!"), "s3cret!")]
    assert (
        client.get("/api/me", headers=bearer(r.get_json()["token"])).status_code == 200
    )

    calls.clear()
    r = login(client, "alice", "wrong")
    assert r.status_code == 401
    assert r.get_json()["error"] == "invalid_grant"
    assert calls == [(toy_hash("s3cret!"), "wrong")]

    # An unknown user costs one verification too: against the dummy hash.
    calls.clear()
    r = login(client, "nobody", "s3cret!")
    assert r.status_code == 401
    assert calls == [(dummy, "s3cret!")]

    # The Werkzeug hash the fixture made no longer logs in: the app's scheme rules.
    env.create_user("bob")
    calls.clear()
    assert login(client, "bob").status_code == 401
    assert [c[1] for c in calls] == [PASSWORD, PASSWORD]
    assert calls[1][0] == dummy


def test_password_verifier_without_arguments(env: AppEnv):
    @env.jwt.password_verifier
    def verify(stored_hash: str, password: str) -> bool:
        return stored_hash == toy_hash(password)

    env.set_user("alice", password_hash=toy_hash("pw"))
    client = env.app.test_client()
    assert login(client, "alice", "pw").status_code == 200
    assert login(client, "alice", "other").status_code == 401


def test_password_hash_attribute_is_configurable(make_app):
    env = make_app(JWT_AUTH_PASSWORD_HASH_ATTRIBUTE="username")
    env.create_user("alice")

    @env.jwt.password_verifier
    def verify(stored_hash: str, password: str) -> bool:
        return stored_hash == password

    client = env.app.test_client()
    # The verifier is handed the configured attribute (here, the username).
    assert login(client, "alice", "alice").status_code == 200
    assert login(client, "alice", PASSWORD).status_code == 401


def test_string_identity_end_to_end(env: AppEnv):
    loaded: list[t.Any] = []
    User, db = env.User, env.db

    @env.jwt.user_identity
    def identity(user: t.Any) -> str:
        return f"user:{user.username}"

    @env.jwt.user_loader
    def load_user(uid: t.Any) -> t.Any:
        loaded.append(uid)
        if not isinstance(uid, str) or not uid.startswith("user:"):
            return None
        return db.session.execute(
            sa.select(User).filter_by(username=uid.removeprefix("user:"))
        ).scalar_one_or_none()

    client = env.app.test_client()
    pair = tokens_for(client)
    claims = claims_of(pair["access_token"])
    assert claims["uid"] == "user:alice"
    assert claims["sub"] == "user:alice"

    r = client.get("/api/me", headers=bearer(pair["access_token"]))
    assert r.status_code == 200
    assert r.get_json() == {"uid": "user:alice", "username": "alice"}
    assert loaded == ["user:alice"]

    # Refresh loads the user by the same identity and keeps it in the new token.
    loaded.clear()
    r = client.post(f"{PREFIX}/refresh", json={"refresh_token": pair["refresh_token"]})
    assert r.status_code == 200
    assert loaded == ["user:alice"]
    assert claims_of(r.get_json()["access_token"])["uid"] == "user:alice"
