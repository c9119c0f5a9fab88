"""A small API protected by flask_jwt_authentication.

Run it with SQLite and nothing else to set up (``flask`` finds ``create_app``)::

    flask --app examples/app.py create-user alice
    flask --app examples/app.py run

The database is ``examples/instance/example.db``. The user model, its loaders and
the ``create-user`` command are in ``examples/users.py``.

Set ``JWT_AUTH_SECRET_KEY`` (64 random characters) to keep tokens valid across
restarts; without it a random key is made at start-up.
"""

from __future__ import annotations

import os
import secrets
import typing as t

from flask import Flask
from users import User as User
from users import create_tables
from users import create_user
from users import db
from users import find_user
from users import load_user

from flask_jwt_authentication import JWTAuthentication
from flask_jwt_authentication import current_user
from flask_jwt_authentication import get_jwt
from flask_jwt_authentication import jwt_required

jwt = JWTAuthentication()
jwt.user_lookup(find_user)  # log-in: the username to the user
jwt.user_loader(load_user)  # protected routes: the token's uid to the user


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

    app.cli.add_command(create_user)
    with app.app_context():
        create_tables()
    return app
