"""A single-page app on flask_jwt_authentication in cookie mode, with DPoP.

The page (``examples/spa/``) logs in, keeps the access token in a JavaScript
variable, refreshes it silently through the HttpOnly refresh cookie, and logs
out. Its tokens are bound (RFC 9449) to a non-extractable WebCrypto key that the
page keeps in IndexedDB and signs a proof with on every request. Run it with
SQLite and nothing else to set up::

    flask --app examples/spa_app.py create-user alice
    flask --app examples/spa_app.py run

and open http://127.0.0.1:5000/. The refresh cookie is ``Secure``: browsers keep
it on ``http://127.0.0.1`` and ``http://localhost``, which they count as secure
contexts; anywhere else serve the app over HTTPS.

The database is ``examples/instance/spa.db``. Set ``JWT_AUTH_SECRET_KEY``
(64 random characters) to keep tokens valid across restarts.
"""

from __future__ import annotations

import os
import secrets
import typing as t

import click
from flask import Flask
from flask import Response
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from werkzeug.security import generate_password_hash

from flask_jwt_authentication import JWTAuthentication
from flask_jwt_authentication import current_user
from flask_jwt_authentication import get_jwt
from flask_jwt_authentication import jwt_required

#: Scripts, styles and requests from this origin only, and no framing: an
#: injected script is what could read the access token, so none may run.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
jwt = JWTAuthentication()


class User(db.Model):  # type: ignore[name-defined,misc]
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(db.String(255), unique=True)
    password_hash: Mapped[str] = mapped_column(db.String(255))
    is_active: Mapped[bool] = mapped_column(default=True)


@jwt.user_lookup
def find_user(username: str) -> User | None:
    return db.session.execute(
        db.select(User).filter_by(username=username.strip())
    ).scalar_one_or_none()


@jwt.user_loader
def load_user(uid: t.Any) -> User | None:
    return db.session.get(User, uid) if isinstance(uid, int) else None


def create_app(config: t.Mapping[str, t.Any] | None = None) -> Flask:
    """Build the app: the page at ``/``, the API beside it; ``config`` overrides
    the defaults (used by tests)."""
    # static_url_path="": index.html, app.js and style.css are served at the root.
    app = Flask(__name__, static_folder="spa", static_url_path="")
    app.config.update(
        SQLALCHEMY_DATABASE_URI="sqlite:///spa.db",
        JWT_AUTH_SECRET_KEY=os.environ.get("JWT_AUTH_SECRET_KEY")
        or secrets.token_urlsafe(64),
        # The refresh token travels in an HttpOnly cookie, never in a body.
        JWT_AUTH_REFRESH_COOKIE=True,
        # A reload or a closed tab can drop the answer to a refresh the server
        # made, leaving the browser with the consumed token: forgive its second
        # use for a few seconds instead of ending the session.
        JWT_AUTH_REFRESH_GRACE_PERIOD=10,
        # The page proves possession of its key on every request (RFC 9449):
        # a stolen token, or refresh cookie, is useless without the key.
        JWT_AUTH_DPOP="allowed",
        # Flood limits counted in this process's memory: one process, no Redis.
        RATELIMIT_STORAGE_URI="memory://",
    )
    app.config.from_prefixed_env()
    app.config.update(config or {})
    db.init_app(app)
    jwt.init_app(app, db=db)

    @app.get("/")
    def index() -> Response:
        return app.send_static_file("index.html")

    @app.get("/api/me")
    @jwt_required
    def me() -> dict[str, t.Any]:
        return {"uid": get_jwt()["uid"], "username": current_user.username}

    @app.after_request
    def secure_headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    @app.cli.command("create-user")
    @click.argument("username")
    @click.password_option()
    def create_user(username: str, password: str) -> None:
        """Create a user who can log in (or set the password of an existing one)."""
        user = find_user(username)
        if user is None:
            db.session.add(
                User(username=username, password_hash=generate_password_hash(password))
            )
            message = f"Created user {username!r}."
        else:
            user.password_hash = generate_password_hash(password)
            message = f"Set the password of user {username!r}."
        db.session.commit()
        click.echo(message)

    with app.app_context():
        db.create_all()
    return app
