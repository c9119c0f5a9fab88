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

The database is ``examples/instance/spa.db``; the user model, its loaders and
the ``create-user`` command are in ``examples/users.py``. Set ``JWT_AUTH_SECRET_KEY``
(64 random characters) to keep tokens valid across restarts.
"""

from __future__ import annotations

import os
import secrets
import typing as t

from flask import Flask
from flask import Response
from users import create_tables
from users import create_user
from users import db
from users import find_user
from users import load_user

from flask_jwt_authentication import JWTAuthentication
from flask_jwt_authentication import current_user
from flask_jwt_authentication import get_jwt
from flask_jwt_authentication import jwt_required

#: Scripts, styles and requests from this origin only, and no framing: an
#: injected script is what could read the access token, so none may run.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


jwt = JWTAuthentication()
jwt.user_lookup(find_user)  # log-in: the username to the user
jwt.user_loader(load_user)  # protected routes: the token's uid to the user


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

    app.cli.add_command(create_user)
    with app.app_context():
        create_tables()
    return app
