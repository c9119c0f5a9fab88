"""Protecting routes: :func:`jwt_required`, :data:`current_user`, :func:`get_jwt`."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import time
import typing as t

from flask import current_app
from flask import g
from flask import request
from werkzeug.local import LocalProxy

from . import signals
from . import tokens
from .dpop_flow import challenge
from .dpop_flow import check_binding
from .errors import InsufficientScope
from .errors import InsufficientUserAuthentication
from .errors import InvalidToken
from .errors import MissingToken
from .errors import TokenRejected
from .passwords import is_active
from .state import EXTENSION_KEY
from .state import AppState
from .state import VerifyOnlyState
from .state import get_state

logger = logging.getLogger("flask_jwt_authentication")

F = t.TypeVar("F", bound=t.Callable[..., t.Any])

_G_KEY = "_jwt_authentication"


@dataclasses.dataclass(frozen=True)
class Authentication:
    """The verified token of the current request."""

    claims: dict[str, t.Any]
    user: t.Any
    token: str


def _access_token(authorization: str, dpop: str | None) -> tuple[str, str] | None:
    """The scheme (``bearer``, or ``dpop`` when DPoP is on) and the token of an
    ``Authorization`` header; ``None`` for another scheme (RFC 6750 §2.1, RFC
    9449 §7.1; the scheme is case-insensitive, RFC 9110 §11.1)."""
    scheme, _, credentials = authorization.strip().partition(" ")
    scheme = scheme.lower()
    if scheme != "bearer" and (scheme != "dpop" or dpop is None):
        return None
    token = credentials.strip()
    if not token or " " in token:
        raise InvalidToken("The Authorization header is malformed.")
    return scheme, token


def authenticate(
    *,
    optional: bool = False,
    permission: str | None = None,
    roles: t.Collection[str] = (),
    max_age: int | None = None,
) -> None:
    """Verify the request's bearer token and remember the result for the request.

    Checks, in order: the token's signature and claims, its revocation (``jti`` and
    login session), the ``jwt_decoded`` receivers, the user (exists and is active),
    then ``permission``.

    :param optional: a request without a bearer token passes, anonymously.
    :param permission: a permission the user must have.
    :param roles: the token must carry at least one of these roles.
    :param max_age: the user must have given the password at most this many
        seconds ago (the token's ``auth_time``, RFC 9470).
    :raises MissingToken: no bearer token (and not ``optional``).
    :raises InvalidToken: the token is invalid, revoked, rejected or its user gone.
    :raises InsufficientUserAuthentication: the token's ``auth_time`` is older
        than ``max_age``.
    :raises InsufficientScope: the user lacks ``permission``.
    :raises TemporarilyUnavailable: the database (in verify-only mode: the JWKS)
        cannot be reached.
    """
    found = current_app.extensions.get(EXTENSION_KEY)
    # One lookup for either kind of state; get_state() explains a missing one.
    state = found if isinstance(found, (AppState, VerifyOnlyState)) else get_state()
    try:
        authorization = request.headers.get("Authorization")
        found_token = (
            _access_token(authorization, state.settings.dpop) if authorization else None
        )
        scheme, token = found_token if found_token else ("bearer", None)
        if token is None:
            if not optional:
                raise MissingToken("Authentication is required: send a bearer token.")
            user = None
            setattr(g, _G_KEY, None)
        elif isinstance(state, VerifyOnlyState):
            # Keys from the JWKS, no database: revocation is checked only when
            # the issuer's revocation feed is followed (docs/resource-server.rst).
            claims = state.decode(token)
            check_binding(state, scheme, token, claims)
            if state.feed is not None:
                reason = state.feed.check(claims)
                if reason is not None:
                    raise InvalidToken(reason)
            _send_decoded(claims, token)
            user = state.load_user(claims["uid"])
            setattr(g, _G_KEY, Authentication(claims, user, token))
        else:
            try:
                claims = tokens.decode(token, state.settings, state.keyset)
            except tokens.TokenError as e:
                raise InvalidToken(str(e)) from None
            check_binding(state, scheme, token, claims)
            store = state.store
            reason = state.revocation_status(claims)
            if reason is not None:
                raise InvalidToken(reason)
            _send_decoded(claims, token)
            with store.unavailable_on_error():
                user = state.extension.load_user(claims["uid"])
            if user is None or not is_active(user):
                raise InvalidToken("The token's user is unknown or disabled.")
            setattr(g, _G_KEY, Authentication(claims, user, token))
        if max_age is not None and token is not None:
            _check_max_age(claims, max_age)
        if permission is not None and not state.extension.has_permission(
            user, permission
        ):
            raise InsufficientScope(f"The {permission!r} permission is required.")
        if roles:
            _check_roles(state.settings.roles_claim, roles)
    except (InvalidToken, InsufficientScope) as e:
        e.with_realm(state.settings.realm)
        if isinstance(e, InvalidToken) and state.settings.dpop is not None:
            e.extra_headers["WWW-Authenticate"] = challenge(state.settings, e)
        raise


def _check_max_age(claims: t.Mapping[str, t.Any], max_age: int) -> None:
    """RFC 9470 §3: refuse a token whose user authenticated too long ago (or
    whose ``auth_time`` is missing, as in tokens issued before it existed)."""
    auth_time = claims.get("auth_time")
    if (
        isinstance(auth_time, bool)
        or not isinstance(auth_time, (int, float))
        or time.time() - auth_time > max_age
    ):
        raise InsufficientUserAuthentication(max_age)


def _check_roles(claim: str, required: t.Collection[str]) -> None:
    auth: Authentication | None = g.get(_G_KEY)
    if auth is None:
        raise MissingToken("Authentication is required: send a bearer token.")
    held = auth.claims.get(claim)
    if not isinstance(held, list) or not any(
        isinstance(role, str) and role in required for role in held
    ):
        raise InsufficientScope(
            "One of the roles " + ", ".join(sorted(required)) + " is required."
        )


def _send_decoded(claims: dict[str, t.Any], token: str) -> None:
    if not signals.jwt_decoded.receivers:
        return
    try:
        signals.jwt_decoded.send(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            payload=claims,
            token=token,
        )
    except TokenRejected:
        raise
    except Exception:
        # Fail closed: a broken receiver never lets a request through. The log
        # has the traceback, never the token.
        logger.exception("A jwt_decoded receiver failed; the token is refused.")
        raise InvalidToken("The token could not be verified.") from None


@t.overload
def jwt_required(fn: F, /) -> F: ...


@t.overload
def jwt_required(
    *,
    optional: bool = False,
    permission: str | None = None,
    roles: str | t.Iterable[str] = (),
    max_age: int | None = None,
) -> t.Callable[[F], F]: ...


def jwt_required(
    fn: F | None = None,
    /,
    *,
    optional: bool = False,
    permission: str | None = None,
    roles: str | t.Iterable[str] = (),
    max_age: int | None = None,
) -> F | t.Callable[[F], F]:
    """Protect a view: it runs only for a request with a valid access token.

    Use it bare (``@jwt_required``) or with arguments
    (``@jwt_required(optional=True)``, ``@jwt_required(permission="edit posts")``).
    Works on ``async`` views too.

    :param optional: also let requests without a token through, with
        :data:`current_user` ``None``; a token that is present must still be valid.
    :param permission: a permission the user must have, asked of
        :meth:`JWTAuthentication.permission_checker`; 403 ``insufficient_scope``
        otherwise.
    :param roles: a role name or several: the token's roles claim (filled by
        :meth:`JWTAuthentication.roles_loader`) must hold at least one; 403
        ``insufficient_scope`` otherwise.
    :param max_age: step-up authentication (RFC 9470): the user must have given
        the password at most this many seconds ago (the token's ``auth_time``;
        a refresh keeps it). Otherwise 401 with ``WWW-Authenticate: Bearer
        error="insufficient_user_authentication", max_age=...``; a new log-in
        gives a token that passes.

    Failures answer 401 with ``WWW-Authenticate: Bearer`` (RFC 6750 §3) or 403,
    with a JSON error body.
    """

    required = frozenset([roles] if isinstance(roles, str) else roles)
    if max_age is not None and (
        isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0
    ):
        raise TypeError("max_age must be a non-negative number of seconds.")

    def decorator(view: F) -> F:
        if inspect.iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
                authenticate(
                    optional=optional,
                    permission=permission,
                    roles=required,
                    max_age=max_age,
                )
                return await view(*args, **kwargs)

            return t.cast(F, async_wrapper)

        @functools.wraps(view)
        def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
            authenticate(
                optional=optional,
                permission=permission,
                roles=required,
                max_age=max_age,
            )
            return view(*args, **kwargs)

        return t.cast(F, wrapper)

    return decorator(fn) if fn is not None else decorator


def current_authentication() -> Authentication | None:
    """The verified token of the current request, or ``None``."""
    return t.cast("Authentication | None", g.get(_G_KEY))


def get_jwt() -> dict[str, t.Any]:
    """The claims of the current request's access token; ``{}`` without one.

    Call it in a view protected by :func:`jwt_required`.
    """
    auth = current_authentication()
    return auth.claims if auth is not None else {}


def _current_user() -> t.Any:
    auth = current_authentication()
    return auth.user if auth is not None else None


#: The user of the current request's access token, as the user loader returned it;
#: ``None`` without a token.
current_user: t.Any = LocalProxy(_current_user)
