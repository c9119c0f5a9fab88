"""A small API protected by flask_jwt_authentication.

Run it with SQLite and nothing else to set up (``flask`` finds ``create_app``)::

    flask --app examples/app.py create-user alice
    flask --app examples/app.py run

The database is ``examples/instance/example.db``.

Set ``JWT_AUTH_SECRET_KEY`` (64 random characters) to keep tokens valid across
restarts; without it a random key is made at start-up.
"""

from __future__ import annotations

import os
import secrets
import time
import typing as t

import click
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from werkzeug.security import generate_password_hash

from flask_jwt_authentication import JWTAuthentication
from flask_jwt_authentication import current_user
from flask_jwt_authentication import get_jwt
from flask_jwt_authentication import jwt_required


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
    """Build the example app; ``config`` overrides the defaults (used by tests)."""
    app = Flask(__name__)
    app.config.update(
        SQLALCHEMY_DATABASE_URI="sqlite:///example.db",
        JWT_AUTH_SECRET_KEY=os.environ.get("JWT_AUTH_SECRET_KEY")
        or secrets.token_urlsafe(64),
    )
    app.config.from_prefixed_env()
    app.config.update(config or {})
    db.init_app(app)
    jwt.init_app(app, db=db)

    @app.get("/api/me")
    @jwt_required
    def me() -> dict[str, t.Any]:
        return {"uid": get_jwt()["uid"], "username": current_user.username}

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
        create_tables()
    return app


def create_tables(attempts: int = 5) -> None:
    """``db.create_all()``, safe when several workers (``gunicorn -w 4``) start
    on an empty database at once: the ones that lose the race to create a table
    fail, and find the tables there when they try again."""
    for attempt in range(1, attempts + 1):
        try:
            db.create_all()
            return
        except DBAPIError:
            if attempt == attempts:
                raise
            time.sleep(0.2 * attempt)
