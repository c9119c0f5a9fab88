"""Recipes for the extension's events and roles.

Each is included in the documentation (docs/events.rst) and exercised by
tests/test_recipes.py. Connect the receivers with the app as sender; module-level
functions are safe with blinker's weak references, closures need ``weak=False``.
"""

from __future__ import annotations

import hashlib
import logging
import typing as t

from flask import Flask
from flask import request

from flask_jwt_authentication import JWTAuthentication
from flask_jwt_authentication import TokenRejected
from flask_jwt_authentication import get_jwt
from flask_jwt_authentication import jwt_required

# Add roles to the token ------------------------------------------------------------


def roles_of(user: t.Any) -> list[str]:
    """The user's roles, from a comma-separated ``roles`` column.

    Register it with ``jwt.roles_loader(roles_of)``; then protect a route with
    ``@jwt_required(roles="admin")``: no checker to write, no query per request.
    """
    return [role.strip() for role in (user.roles or "").split(",") if role.strip()]


def add_reports(app: Flask, jwt: JWTAuthentication) -> None:
    """Register ``roles_of`` and a route for the ``admin`` and ``auditor`` roles."""
    jwt.roles_loader(roles_of)

    @app.get("/api/reports")
    @jwt_required(roles=["admin", "auditor"])  # any one of them
    def reports() -> dict[str, t.Any]:
        return {"reports": [], "for": get_jwt()["roles"]}


# Write an audit log of issued tokens -------------------------------------------------

audit_log = logging.getLogger("audit")


def log_issued_token(sender: t.Any, token: str, payload: dict[str, t.Any]) -> None:
    """A ``jwt_encoded`` receiver: one line per issued access token.

    It logs the token's id, subject, session and expiry, never the token itself,
    which is a credential.
    """
    audit_log.info(
        "access token issued: jti=%s sub=%s sid=%s exp=%s",
        payload["jti"],
        payload["sub"],
        payload["sid"],
        payload["exp"],
    )


# Bind a token to the client address and device ---------------------------------------


def _client_fingerprint() -> str:
    # The address (ProxyFix makes it the client's behind a proxy) and a device id
    # the app's clients send; hashed, so the claim reveals neither.
    device = request.headers.get("X-Device-Id", "")
    material = f"{request.remote_addr}|{device}".encode()
    return hashlib.sha256(material).hexdigest()[:32]


def bind_to_client(sender: t.Any, payload: dict[str, t.Any], user: t.Any) -> None:
    """A ``jwt_created`` receiver: record who the token is issued to."""
    payload["client"] = _client_fingerprint()


def check_client_binding(sender: t.Any, payload: dict[str, t.Any], token: str) -> None:
    """A ``jwt_decoded`` receiver: refuse the token from any other client."""
    if payload.get("client") != _client_fingerprint():
        raise TokenRejected("The token was issued to another client.")


# Reject tokens issued before the password changed -------------------------------------


def reject_tokens_older_than_password(
    load_user: t.Callable[[t.Any], t.Any],
) -> t.Callable[..., None]:
    """A ``jwt_decoded`` receiver refusing tokens issued before the user's last
    password change (a ``password_changed_at`` attribute, seconds since the epoch).

    Connect it with ``weak=False``, as it is made here::

        signals.jwt_decoded.connect(
            reject_tokens_older_than_password(load_user), app, weak=False
        )
    """

    def receiver(sender: t.Any, payload: dict[str, t.Any], token: str) -> None:
        user = load_user(payload["uid"])
        changed = getattr(user, "password_changed_at", None)
        if changed is not None and changed > payload["iat"]:
            raise TokenRejected("The password has changed since; log in again.")

    return receiver


# Store upgraded password hashes ------------------------------------------------------


def store_rehashed_password(
    db: t.Any,
) -> t.Callable[..., None]:
    """A ``password_rehashed`` receiver saving the new hash on the user.

    A user logged in with a hash of an older method or cheaper parameters; the
    extension re-hashed the password with the current ones. Connect it with
    ``weak=False``::

        signals.password_rehashed.connect(store_rehashed_password(db), app, weak=False)
    """

    def receiver(sender: t.Any, user: t.Any, password_hash: str) -> None:
        user.password_hash = password_hash
        db.session.add(user)
        db.session.commit()

    return receiver
