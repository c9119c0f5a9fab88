"""An API protected by flask_jwt_authentication, with its admin pages.

Run it with SQLite and nothing else to set up::

    flask --app examples/admin_app.py create-user root --admin
    flask --app examples/admin_app.py run

then open http://127.0.0.1:5000/jwt-admin/ and sign in as ``root``. The database is
``examples/instance/admin_example.db``.

Set ``SECRET_KEY`` and ``JWT_AUTH_SECRET_KEY`` (64 random characters each) to keep
admin sign-ins and tokens valid across restarts, and
``FLASK_JWT_AUTH_KEY_ENCRYPTION_KEY`` (a Fernet key) to generate and rotate keys on
the Keys page.
"""

from __future__ import annotations

import os
import secrets
import typing as t

import click
from flask import Flask
from flask.cli import with_appcontext
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from werkzeug.security import generate_password_hash

from flask_jwt_authentication import ADMINISTER_PERMISSION
from flask_jwt_authentication import JWTAuthentication
from flask_jwt_authentication import current_user
from flask_jwt_authentication import default_permission_checker
from flask_jwt_authentication import get_jwt
from flask_jwt_authentication import jwt_required
from flask_jwt_authentication.admin import init_admin


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
jwt = JWTAuthentication()


class User(db.Model):  # type: ignore[name-defined,misc]
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(db.String(255), unique=True)
    password_hash: Mapped[str] = mapped_column(db.String(255))
    is_active: Mapped[bool] = mapped_column(default=True)
    is_admin: Mapped[bool] = mapped_column(default=False)


@jwt.user_lookup
def find_user(username: str) -> User | None:
    return db.session.execute(
        db.select(User).filter_by(username=username)
    ).scalar_one_or_none()


@jwt.user_loader
def load_user(uid: t.Any) -> User | None:
    return db.session.get(User, uid) if isinstance(uid, int) else None


@jwt.permission_checker
def check_permission(user: User | None, permission: str) -> bool:
    """Administrators are the users with ``is_admin``; the other permissions
    keep their defaults."""
    if permission == ADMINISTER_PERMISSION:
        return user is not None and user.is_admin
    return default_permission_checker(user, permission)


def create_app(config: t.Mapping[str, t.Any] | None = None) -> Flask:
    """Build the example app; ``config`` overrides the defaults (used by tests)."""
    app = Flask(__name__)
    app.config.update(
        SQLALCHEMY_DATABASE_URI="sqlite:///admin_example.db",
        # Signs the admin's cookie and its CSRF tokens.
        SECRET_KEY=os.environ.get("SECRET_KEY") or secrets.token_urlsafe(64),
        JWT_AUTH_SECRET_KEY=os.environ.get("JWT_AUTH_SECRET_KEY")
        or secrets.token_urlsafe(64),
    )
    app.config.from_prefixed_env()
    app.config.update(config or {})
    db.init_app(app)
    jwt.init_app(app, db=db)
    init_admin(app)  # the admin pages, at /jwt-admin

    @app.get("/api/me")
    @jwt_required
    def me() -> dict[str, t.Any]:
        return {"uid": get_jwt()["uid"], "username": current_user.username}

    app.cli.add_command(create_user)
    with app.app_context():
        db.create_all()
    return app


@click.command("create-user")
@with_appcontext
@click.argument("username")
@click.password_option()
@click.option("--admin", is_flag=True, help="May use the admin pages.")
def create_user(username: str, password: str, admin: bool) -> None:
    """Create a user who can log in (or set the password of an existing one)."""
    user = find_user(username)
    if user is None:
        user = User(username=username)
        db.session.add(user)
    user.password_hash = generate_password_hash(password)
    user.is_admin = admin
    db.session.commit()
    role = "an administrator" if admin else "a user"
    click.echo(f"{username!r} is {role}.")
