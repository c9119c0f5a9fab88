"""A resource server: an API that accepts the access tokens of an auth server
(``examples/app.py`` or any app using the extension with RS256, ES256, ...) and
holds no secret and no database: it verifies tokens with the auth server's JWKS.

Run the auth server with an asymmetric key and an issuer, then this app::

    export FLASK_JWT_AUTH_ALGORITHM=ES256 FLASK_JWT_AUTH_ISSUER=http://127.0.0.1:5000
    FLASK_JWT_AUTH_PRIVATE_KEY=tests/keys/ec256.pem flask --app examples/app.py run
    flask --app examples/resource_server.py run --port 5001

Settings come from ``FLASK_*`` environment variables: ``FLASK_JWT_AUTH_JWKS_URL``
(default: the auth server above), ``FLASK_JWT_AUTH_ISSUER`` (required),
``FLASK_JWT_AUTH_AUDIENCE`` and ``FLASK_JWT_AUTH_ALGORITHM`` (default ``ES256``).

To refuse tokens whose user logged out, follow the auth server's revocation feed
(the auth server lists this client in ``JWT_AUTH_INTROSPECTION_CLIENTS``)::

    export FLASK_JWT_AUTH_REVOCATION_SYNC=push
    export FLASK_JWT_AUTH_REVOCATION_FEED_URL=http://127.0.0.1:5000/jwt-authentication/api/auth/revocations
    export FLASK_JWT_AUTH_REVOCATION_FEED_CLIENT_ID=orders-api
    export FLASK_JWT_AUTH_REVOCATION_FEED_CLIENT_SECRET=...
"""

from __future__ import annotations

import typing as t

from flask import Flask

from flask_jwt_authentication import JWTAuthentication
from flask_jwt_authentication import get_jwt
from flask_jwt_authentication import jwt_required

jwt = JWTAuthentication()


def create_app(config: t.Mapping[str, t.Any] | None = None) -> Flask:
    """Build the resource server; ``config`` overrides the environment."""
    app = Flask(__name__)
    app.config.update(
        JWT_AUTH_JWKS_URL="http://127.0.0.1:5000/.well-known/jwks.json",
        JWT_AUTH_ALGORITHM="ES256",
    )
    app.config.from_prefixed_env()
    app.config.update(config or {})
    jwt.init_app(app)  # verify-only: no database, no endpoints

    @app.get("/api/me")
    @jwt_required
    def me() -> dict[str, t.Any]:
        claims = get_jwt()
        return {"uid": claims["uid"], "claims": claims}

    @app.get("/api/reports")
    @jwt_required(roles="reporter")
    def reports() -> dict[str, t.Any]:
        return {"reports": [], "for": get_jwt()["sub"]}

    return app
