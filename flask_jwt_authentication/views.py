"""The HTTP endpoints: log in, refresh, log out, and the JWKS document."""

from __future__ import annotations

import time
import typing as t
import uuid

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import jsonify
from flask import request
from flask.blueprints import BlueprintSetupState
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import InternalServerError
from werkzeug.routing import Rule

from . import protocol
from . import signals
from . import tokens
from .decorators import authenticate
from .decorators import current_authentication
from .dpop_flow import ask_for_the_nonce_first
from .dpop_flow import token_request_key
from .errors import AccessDenied
from .errors import InsufficientScope
from .errors import InvalidGrant
from .errors import JWTAuthError
from .errors import MethodNotAllowed
from .errors import NotFound
from .inputs import clear_refresh_cookie
from .inputs import no_store
from .inputs import presented_refresh_token
from .inputs import read_json_object
from .inputs import require_csrf_header
from .inputs import require_json_body
from .inputs import string_field
from .keys import Key
from .login import MAX_PASSWORD_LENGTH
from .login import MAX_REFRESH_TOKEN_LENGTH
from .login import MAX_USERNAME_LENGTH
from .login import check_login
from .login import client_address
from .login import rotate
from .state import ACCESS_PERMISSION
from .state import USE_PERMISSION
from .state import AppState
from .state import get_state

if t.TYPE_CHECKING:
    from .config import Settings


def _role_list(roles: t.Iterable[str]) -> list[str]:
    if isinstance(roles, str):
        roles = [roles]
    names = list(roles)
    if not all(isinstance(name, str) for name in names):
        raise TypeError("The roles loader must return strings.")
    return names


def _issue(
    state: AppState,
    user: t.Any,
    session_id: str,
    refresh_token: str,
    now: int,
    refresh_expires_at: int,
    key: Key,
    auth_time: int | None = None,
    dpop_jkt: str | None = None,
) -> tuple[Response, dict[str, t.Any]]:
    """Sign the access token of a new pair with ``key``, commit, and answer with
    the pair.

    The token is signed before the commit, so a failed commit issues nothing. The
    caller takes ``key`` before any database work: a key reload needs a pooled
    connection, which must not be awaited while this request holds one and its
    write lock.

    :param auth_time: when the user last gave a password (default: ``now``).
    :param dpop_jkt: the DPoP key the session is bound to: the access token's
        ``cnf.jkt`` (RFC 9449 §6), and ``token_type: "DPoP"``.
    :returns: the response and the access token's claims.
    """
    settings = state.settings
    claims = tokens.access_claims(
        settings,
        state.extension.identity_of(user),
        session_id,
        now=now,
        auth_time=auth_time,
    )
    roles = state.extension.roles_of(user)
    if roles is not None:
        claims[settings.roles_claim] = _role_list(roles)
    if dpop_jkt is not None:
        claims["cnf"] = {"jkt": dpop_jkt}
    reserved = {k: claims.get(k) for k in tokens.RESERVED_CLAIMS}
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    signals.jwt_created.send(app, payload=claims, user=user)
    changed = sorted(k for k in tokens.RESERVED_CLAIMS if claims.get(k) != reserved[k])
    if changed:
        raise RuntimeError(
            "A jwt_created receiver changed reserved claims: " + ", ".join(changed)
        )
    token = tokens.encode(claims, key)
    state.store.commit()
    signals.jwt_encoded.send(app, token=token, payload=claims)
    body = {
        "token": token,
        "access_token": token,
        "token_type": "Bearer" if dpop_jkt is None else "DPoP",
        "expires_in": settings.access_token_ttl,
        "refresh_token": refresh_token,
        "refresh_expires_in": refresh_expires_at - now,
    }
    if not settings.refresh_cookie:
        return no_store(jsonify(body)), claims
    # Cookie mode: the refresh token is out of reach of scripts, and sent only to
    # the refresh endpoint.
    del body["refresh_token"]
    response = no_store(jsonify(body))
    response.set_cookie(
        settings.refresh_cookie_name,
        refresh_token,
        max_age=refresh_expires_at - now,
        path=f"{settings.url_prefix}/refresh",
        secure=True,
        httponly=True,
        samesite="Strict",
    )
    return response, claims


def login() -> Response:
    """``POST {prefix}/tokens``: exchange a username and password for a token pair."""
    state = get_state()
    ask_for_the_nonce_first(state)
    key = state.keyset.current  # before any database work, see _issue
    body = read_json_object()
    if state.settings.refresh_cookie:
        # The answer sets the refresh cookie: a cross-site form must not log the
        # browser in to an account of the attacker's choosing (login CSRF).
        require_csrf_header(state.settings, "A log-in in cookie mode")
        require_json_body()
    raw_username = t.cast(str, string_field(body, "username", MAX_USERNAME_LENGTH))
    password = t.cast(str, string_field(body, "password", MAX_PASSWORD_LENGTH))
    user = check_login(state, raw_username, password)
    # After the password: a proof is checked (and used up) for a real log-in only.
    dpop_jkt = token_request_key(state)
    ext, store = state.extension, state.store
    if not ext.has_permission(user, ACCESS_PERMISSION):
        raise AccessDenied("You may not obtain tokens.")
    now = int(time.time())
    expires_at = state.settings.refresh_expiry(now, now)
    with store.unavailable_on_error():
        session_id, refresh_token = store.start_session(
            state.extension.identity_key(user),
            now=now,
            expires_at=expires_at,
            client_ip=request.remote_addr,
            user_agent=request.user_agent.string,
            dpop_jkt=dpop_jkt,
        )
        response, _ = _issue(
            state,
            user,
            str(session_id),
            refresh_token,
            now,
            expires_at,
            key,
            dpop_jkt=dpop_jkt,
        )
    return response


def _refresh(state: AppState, presented: str) -> Response:
    store = state.store
    key = state.keyset.current  # before any database work, see _issue
    now = int(time.time())
    dpop_jkt = token_request_key(state)
    with store.unavailable_on_error():
        done = rotate(state, presented, now, dpop_jkt)
        response, claims = _issue(
            state,
            done.user,
            done.session_id,
            done.refresh_token,
            now,
            done.refresh_expires_at,
            key,
            done.auth_time,
            done.dpop_jkt,
        )
    signals.token_refreshed.send(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        user=done.user,
        session_id=done.session_id,
        payload=claims,
    )
    return response


def refresh() -> Response:
    """``POST {prefix}/refresh``: consume a refresh token for a new pair."""
    state = get_state()
    ask_for_the_nonce_first(state)
    presented = presented_refresh_token(state.settings)
    try:
        return _refresh(state, presented)
    except InvalidGrant:
        # Only failures count (see limits): past the limit they get 429.
        state.flood.failed(refresh=state.flood.client(client_address()))
        raise


def logout() -> Response:
    """``POST {prefix}/logout``: revoke the access token and its login session.

    An optional ``refresh_token`` in the body ends that token's session too, if it
    belongs to the same user.
    """
    authenticate()
    state = get_state()
    auth = current_authentication()
    assert auth is not None
    if not state.extension.has_permission(auth.user, USE_PERMISSION):
        raise InsufficientScope("You may not log out.").with_realm(state.settings.realm)
    body = read_json_object(required=False)
    presented = string_field(
        body, "refresh_token", MAX_REFRESH_TOKEN_LENGTH, required=False
    )
    store, claims = state.store, auth.claims
    now = int(time.time())
    sessions = [uuid.UUID(claims["sid"])]
    with store.unavailable_on_error():
        if presented is not None:
            record = store.find_refresh_token(presented)
            if record is not None and record.user_key == state.extension.identity_key(
                auth.user
            ):
                sessions.append(record.session_id)
        try:
            store.revoke_access_token(
                claims["jti"], expires_at=int(claims["exp"]), now=now
            )
            for session_id in sessions:
                store.revoke_session(session_id, now=now, reason="logout")
            store.commit()
        except sa_exc.IntegrityError:
            # A concurrent log-out with the same token revoked the jti first.
            store.rollback()
            for session_id in sessions:
                store.revoke_session(session_id, now=now, reason="logout")
            store.commit()
    signals.logged_out.send(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        user=auth.user,
        payload=claims,
    )
    return clear_refresh_cookie(state.settings, no_store(Response(status=204)))


def _session_owner() -> tuple[AppState, t.Any, dict[str, t.Any]]:
    """Authenticate a sessions request; the caller needs the log-out permission."""
    authenticate()
    state = get_state()
    auth = current_authentication()
    assert auth is not None
    if not state.extension.has_permission(auth.user, USE_PERMISSION):
        raise InsufficientScope("You may not manage sessions.").with_realm(
            state.settings.realm
        )
    return state, auth.user, auth.claims


def list_sessions() -> Response:
    """``GET {prefix}/sessions``: the caller's live login sessions."""
    state, user, claims = _session_owner()
    with state.store.unavailable_on_error():
        sessions = state.store.user_sessions(
            state.extension.identity_key(user), now=int(time.time())
        )
    body = [dict(s.to_dict(), current=s.id == claims["sid"]) for s in sessions]
    return no_store(jsonify({"sessions": body}))


def revoke_all_sessions() -> Response:
    """``DELETE {prefix}/sessions``: log out everywhere."""
    state, user, _ = _session_owner()
    store = state.store
    with store.unavailable_on_error():
        store.revoke_user_sessions(
            state.extension.identity_key(user),
            now=int(time.time()),
            reason="logout everywhere",
        )
        store.commit()
    return clear_refresh_cookie(state.settings, no_store(Response(status=204)))


def revoke_one_session(session_id: str) -> Response:
    """``DELETE {prefix}/sessions/<id>``: end one of the caller's sessions."""
    state, user, _ = _session_owner()
    try:
        parsed = uuid.UUID(session_id)
    except ValueError:
        raise NotFound("No such session.") from None
    store = state.store
    with store.unavailable_on_error():
        revoked = store.revoke_session(
            parsed,
            now=int(time.time()),
            reason="revoked by owner",
            user_key=state.extension.identity_key(user),
            only_unexpired=True,
        )
        store.commit()
    if not revoked:
        raise NotFound("No such session.")
    return no_store(Response(status=204))


def jwks() -> Response:
    """``GET /.well-known/jwks.json``: the public keys that verify our tokens."""
    response = jsonify(get_state().keyset.jwks())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def _server_error(error: InternalServerError) -> Response:
    """Unexpected failures of the endpoints still answer JSON, never HTML.

    Flask has logged the original exception with its traceback by now; the client
    learns nothing of it. The extension's own 500s keep their body.
    """
    if isinstance(error, JWTAuthError):
        return protocol.render(error)
    body = {
        "error": "server_error",
        "error_description": "The server could not handle the request.",
    }
    response = jsonify(body)
    response.status_code = 500
    return no_store(response)


def _dispatch(
    handlers: dict[str, t.Callable[..., Response]],
) -> t.Callable[..., Response]:
    """One view per path that answers every method.

    The rule accepts any method, so a wrong one reaches this view and gets the
    contract's JSON 405 with an ``Allow`` that lists only what works, instead of
    Werkzeug's HTML answer.
    """
    allowed = sorted({*handlers, "OPTIONS"})

    def view(**kwargs: t.Any) -> Response:
        handler = handlers.get(request.method)
        if handler is not None:
            get_state().extension.require_callbacks()
            return handler(**kwargs)
        if request.method == "OPTIONS":
            return Response(status=200, headers={"Allow": ", ".join(allowed)})
        raise MethodNotAllowed(handlers)

    return view


def make_blueprint(
    settings: Settings,
    extra_routes: t.Mapping[str, tuple[str, dict[str, t.Callable[..., Response]]]]
    | None = None,
) -> Blueprint:
    """The blueprint of the endpoints, under ``settings.url_prefix``.

    :param extra_routes: more routes, path -> (endpoint name, method -> view).
    """
    bp = Blueprint("jwt_authentication", __name__)
    prefix = settings.url_prefix
    routes: dict[str, tuple[str, dict[str, t.Callable[..., Response]]]] = {
        f"{prefix}/tokens": ("tokens", {"POST": login}),
        f"{prefix}/refresh": ("refresh", {"POST": refresh}),
        f"{prefix}/logout": ("logout", {"POST": logout}),
        f"{prefix}/sessions": (
            "sessions",
            {"GET": list_sessions, "DELETE": revoke_all_sessions},
        ),
        f"{prefix}/sessions/<session_id>": ("session", {"DELETE": revoke_one_session}),
        "/.well-known/jwks.json": ("jwks", {"GET": jwks, "HEAD": jwks}),
    }
    if settings.openapi:
        from .openapi import serve_document

        routes[f"{prefix}/openapi.json"] = ("openapi", {"GET": serve_document})
    routes.update(extra_routes or {})

    def register(state: BlueprintSetupState) -> None:
        # Flask's add_url_rule always restricts methods; a Werkzeug rule without
        # methods matches them all. The endpoint keeps the blueprint's name, so
        # the blueprint's error handler applies.
        for path, (name, handlers) in routes.items():
            endpoint = f"{bp.name}.{name}"
            state.app.url_map.add(Rule(path, endpoint=endpoint))
            state.app.view_functions[endpoint] = _dispatch(handlers)

    bp.record_once(register)
    bp.register_error_handler(InternalServerError, _server_error)
    bp.register_error_handler(
        JWTAuthError, protocol.add_challenge(lambda: get_state().settings.realm)
    )
    bp.after_request(protocol.no_content_type_on_204)
    bp.before_app_request(protocol.json_routing_errors(prefix))
    return bp
