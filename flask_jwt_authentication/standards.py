"""The OAuth standard endpoints: server metadata (RFC 8414), token revocation
(RFC 7009) and token introspection (RFC 7662)."""

from __future__ import annotations

import json
import time
import typing as t
from urllib.parse import parse_qsl

from flask import Response
from flask import current_app
from flask import jsonify
from flask import request
from flask import url_for
from sqlalchemy import exc as sa_exc

from . import signals
from . import tokens
from .decorators import _send_decoded
from .errors import InvalidClient
from .errors import InvalidRequest
from .errors import InvalidToken
from .errors import UnsupportedTokenType
from .inputs import no_store
from .inputs import read_body
from .inputs import read_json_object
from .inputs import string_field
from .introspection import IntrospectionClients
from .introspection import load_clients
from .login import client_address
from .passwords import is_active
from .revocation_remote import make_feed
from .state import AppState
from .state import get_state

if t.TYPE_CHECKING:
    from .config import Settings

#: The token type hints we issue (RFC 7009 §2.1, RFC 7662 §2.1).
TOKEN_TYPE_HINTS = ("access_token", "refresh_token")
_FORM = "application/x-www-form-urlencoded"

Routes = dict[str, tuple[str, dict[str, t.Callable[..., Response]]]]


def _read_params() -> dict[str, t.Any]:
    """The request's parameters: a form (RFC 7009 §2.1, RFC 7662 §2.1) or a JSON
    object, within the body size cap."""
    if request.mimetype != _FORM:
        return read_json_object()
    data = read_body(get_state().settings.max_body_size)
    try:
        pairs = parse_qsl(data.decode("utf-8"), keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("The form body is not valid UTF-8.") from None
    params = dict(pairs)
    if len(params) != len(pairs):
        # RFC 6749 §3.1: request parameters must not be included more than once.
        raise InvalidRequest("A parameter is repeated.")
    return params


def _token_params() -> tuple[str, str | None]:
    params = _read_params()
    token = t.cast(str, string_field(params, "token", tokens.MAX_TOKEN_LENGTH))
    hint = string_field(params, "token_type_hint", 64, required=False)
    return token, hint


def _verified_access_token(state: AppState, token: str) -> dict[str, t.Any] | None:
    """The claims of a valid, unrevoked access token whose user is active, checked
    as a protected route checks it; ``None`` otherwise."""
    try:
        claims = tokens.decode(token, state.settings, state.keyset)
    except tokens.TokenError:
        return None
    store = state.store
    with store.unavailable_on_error():
        if store.revocation_status(claims["jti"], claims["sid"], claims["iat"]):
            return None
    try:
        _send_decoded(claims, token)
    except InvalidToken:
        return None
    with store.unavailable_on_error():
        user = state.extension.load_user(claims["uid"])
    if user is None or not is_active(user):
        return None
    return claims


def _looks_like_jws(token: str) -> bool:
    return token.count(".") == 2


# RFC 8414 ---------------------------------------------------------------------------


def server_metadata() -> Response:
    """``GET /.well-known/oauth-authorization-server``: RFC 8414 metadata.

    Receivers of :data:`~flask_jwt_authentication.signals.server_metadata_created`
    may add members (DPoP's algorithms, a ``service_documentation`` link).
    """
    state = get_state()
    settings, keyset = state.settings, state.keyset
    algorithms = sorted(
        {k.algorithm for k in (keyset.current, *keyset.next, *keyset.retiring)}
    )
    metadata: dict[str, t.Any] = {
        # RFC 8414 §3.3: must be identical to the iss of our tokens.
        "issuer": settings.issuer,
        "token_endpoint": url_for("jwt_authentication.tokens", _external=True),
        "jwks_uri": url_for("jwt_authentication.jwks", _external=True),
        "revocation_endpoint": url_for("jwt_authentication.revoke", _external=True),
        "introspection_endpoint": url_for(
            "jwt_authentication.introspect", _external=True
        ),
        # The token endpoint takes the resource owner's password (RFC 6749 §4.3)
        # as JSON, and refresh tokens at {prefix}/refresh.
        "grant_types_supported": ["password", "refresh_token"],
        # Public clients: no client authentication at the token endpoints.
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic"],
        # Not registered by RFC 8414, which has no member for the algorithms of
        # access tokens; the name follows its *_signing_alg_values_supported style.
        "access_token_signing_alg_values_supported": algorithms,
        "response_types_supported": [],
    }
    if settings.dpop is not None:
        # RFC 9449 §5.1.
        metadata["dpop_signing_alg_values_supported"] = list(settings.dpop_algorithms)
    signals.server_metadata_created.send(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        metadata=metadata,
    )
    response = jsonify(metadata)
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


# RFC 7009 ---------------------------------------------------------------------------


def revoke() -> Response:
    """``POST {prefix}/revoke``: revoke an access or refresh token (RFC 7009).

    Possession of the token is the authorization. A refresh token ends its whole
    login session, access tokens included; an access token is revoked by its
    ``jti``. Unknown and already revoked tokens also get 200 (§2.2). Attempts that
    revoke nothing count against the refresh flood limit, so tokens cannot be
    guessed here either.
    """
    state = get_state()
    token, hint = _token_params()
    found = _revoke(state, token, hint)
    if not found:
        # Only misses count, as for refreshes: past the limit they get 429.
        state.flood.failed(refresh=state.flood.client(client_address()))
    if not found and hint is not None and hint not in TOKEN_TYPE_HINTS:
        # RFC 7009 §2.2.1: a type we do not issue, and the token is none of ours.
        raise UnsupportedTokenType(
            f"Tokens of type {hint!r} cannot be revoked here; "
            "this server issues access_token and refresh_token."
        )
    return no_store(Response(status=200))


def _revoke(state: AppState, token: str, hint: str | None) -> bool:
    """Revoke ``token``; whether it was one of ours (live or already revoked)."""
    store = state.store
    now = int(time.time())
    # RFC 7009 §2.1: the hint orders the search, it never limits it.
    order = ("refresh", "access") if hint == "refresh_token" else ("access", "refresh")
    for kind in order:
        if kind == "access" and _looks_like_jws(token):
            try:
                claims = tokens.decode(token, state.settings, state.keyset)
            except tokens.TokenError:
                continue
            with store.unavailable_on_error():
                try:
                    store.revoke_access_token(
                        claims["jti"], expires_at=int(claims["exp"]), now=now
                    )
                    store.commit()
                except sa_exc.IntegrityError:
                    store.rollback()  # revoked already: §2.2, still 200
            return True
        if kind == "refresh" and not _looks_like_jws(token):
            with store.unavailable_on_error():
                record = store.find_refresh_token(token)
                if record is None:
                    continue
                store.revoke_session(record.session_id, now=now, reason="revoked")
                store.commit()
            return True
    return False


# RFC 7662 ---------------------------------------------------------------------------


def _authenticate_client(state: AppState, clients: IntrospectionClients) -> None:
    """Check the request's HTTP Basic credentials; failures count against the
    refresh flood limit of the address."""
    realm = state.settings.realm
    auth = request.authorization
    if auth is None or auth.type != "basic":
        raise InvalidClient("Authenticate with HTTP Basic as a resource server.", realm)
    reservation = state.flood.reserve(refresh=state.flood.client(client_address()))
    client = clients.authenticate(auth.username or "", auth.password or "")
    if client is None:
        raise InvalidClient("The client credentials are not valid.", realm)
    reservation.succeeded()


def _introspect_refresh(state: AppState, token: str) -> dict[str, t.Any] | None:
    store = state.store
    now = int(time.time())
    with store.unavailable_on_error():
        record = store.find_refresh_token(token)
    if (
        record is None
        or record.consumed
        or record.session_revoked
        or now >= record.expires_at
    ):
        return None
    identity = json.loads(record.user_key)
    return {
        "active": True,
        "token_type": "refresh_token",
        "iss": state.settings.issuer,
        "sub": str(identity),
        "uid": identity,
        "exp": record.expires_at,
        "sid": str(record.session_id),
        "auth_time": record.auth_time or record.session_created_at,
    }


def make_introspect(clients: IntrospectionClients) -> t.Callable[[], Response]:
    """The introspection view for the configured ``clients``."""

    def introspect() -> Response:
        """``POST {prefix}/introspect``: a token's state and claims (RFC 7662)."""
        state = get_state()
        _authenticate_client(state, clients)
        token, hint = _token_params()
        body: dict[str, t.Any] | None = None
        order = ("refresh", "access") if hint == "refresh_token" else ("access",)
        for kind in (*order, "refresh"):
            if kind == "access" and _looks_like_jws(token):
                claims = _verified_access_token(state, token)
                if claims is not None:
                    cnf = claims.get("cnf")
                    bound = isinstance(cnf, dict) and "jkt" in cnf
                    body = {
                        **claims,
                        "active": True,
                        "token_type": "DPoP" if bound else "Bearer",
                        "auth_time": claims.get("auth_time"),
                    }
                    break
            elif kind == "refresh" and not _looks_like_jws(token):
                body = _introspect_refresh(state, token)
                if body is not None:
                    break
        return no_store(jsonify(body or {"active": False}))

    return introspect


def standard_routes(settings: Settings, config: t.Mapping[str, t.Any]) -> Routes:
    """The routes of the standard endpoints, for the extension's blueprint.

    :param settings: the application's settings (the URL prefix).
    :param config: the application's configuration, for
        ``JWT_AUTH_INTROSPECTION_CLIENTS``.
    :raises ConfigurationError: the introspection clients are misconfigured.
    """
    clients = load_clients(config)
    prefix = settings.url_prefix
    return {
        "/.well-known/oauth-authorization-server": (
            "server_metadata",
            {"GET": server_metadata, "HEAD": server_metadata},
        ),
        f"{prefix}/revoke": ("revoke", {"POST": revoke}),
        f"{prefix}/introspect": ("introspect", {"POST": make_introspect(clients)}),
        f"{prefix}/revocations": (
            "revocations",
            {"GET": make_feed(clients, _authenticate_client, get_state)},
        ),
    }
