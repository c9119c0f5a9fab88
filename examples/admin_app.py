"""An API protected by flask_jwt_authentication, with its admin pages.

Run it with SQLite and nothing else to set up::

    flask --app examples/admin_app.py create-user root --admin
    flask --app examples/admin_app.py run

then open http://127.0.0.1:5000/jwt-admin/ and sign in as ``root``. The database is
``examples/instance/admin_example.db``.

The user model, its loaders and the ``create-user`` command are in
``examples/users.py``; this example adds the permission checker.

Set ``SECRET_KEY`` and ``JWT_AUTH_SECRET_KEY`` (64 random characters each) to keep
admin sign-ins and tokens valid across restarts, and
``FLASK_JWT_AUTH_KEY_ENCRYPTION_KEY`` (a Fernet key) to generate and rotate keys on
the Keys page.
"""

from __future__ import annotations

import os
import secrets
import typing as t

from flask import Flask
from users import User
from users import create_tables
from users import create_user
from users import db
from users import find_user
from users import load_user

from flask_jwt_authentication import ADMINISTER_PERMISSION
from flask_jwt_authentication import JWTAuthentication
from flask_jwt_authentication import current_user
from flask_jwt_authentication import default_permission_checker
from flask_jwt_authentication import get_jwt
from flask_jwt_authentication import jwt_required
from flask_jwt_authentication.admin import init_admin

jwt = JWTAuthentication()
jwt.user_lookup(find_user)  # log-in: the username to the user
jwt.user_loader(load_user)  # protected routes: the token's uid to the user


@jwt.permission_checker
def check_permission(user: User | None, permission: str) -> bool:
    """Administrators are the users with ``is_admin`` (``create-user --admin``);
    the other permissions keep their defaults."""
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
        create_tables()
    return app
