"""Log-in and refresh-token rotation, apart from HTTP: the checks a log-in makes
(flood limits, the user lookup, one password hash whatever the outcome) and the
consumption of a refresh token (rotation, the grace window, reuse detection).

:mod:`.views` turns their results into answers; the admin's sign-in page uses
:func:`check_login` too.
"""

from __future__ import annotations

import dataclasses
import json
import typing as t

from flask import current_app
from flask import request

from . import signals
from .errors import AccessDenied
from .errors import InvalidDPoPProof
from .errors import InvalidGrant
from .errors import InvalidRequest
from .errors import TemporarilyUnavailable
from .errors import TooManyRequests
from .limits import FloodControl
from .passwords import is_active
from .state import ACCESS_PERMISSION
from .state import AppState

if t.TYPE_CHECKING:
    from .store import RefreshRecord

#: The longest username and password accepted (characters).
MAX_USERNAME_LENGTH = 255
MAX_PASSWORD_LENGTH = 1024
#: The longest refresh token accepted; ours are 43 characters.
MAX_REFRESH_TOKEN_LENGTH = 512

_REUSED = "The refresh token was already used; the session is revoked."


def check_login(state: AppState, raw_username: str, password: str) -> t.Any:
    """The user a username and password belong to, checked the way every log-in
    is: ``POST {prefix}/tokens`` and the admin's sign-in page both come here.

    The attempt is counted against the flood limits before the password is
    checked; every failure costs one hash verification and raises the same
    error; a success clears the username's counter. No permission is checked.

    :param state: the application's state.
    :param raw_username: the username as sent (normalised here).
    :param password: the password as sent.
    :returns: the user.
    :raises InvalidRequest: the username is empty once normalised.
    :raises TooManyRequests: a flood limit is exhausted; nothing was checked.
    :raises TemporarilyUnavailable: the user lookup hit a database outage; the
        attempt is not counted.
    :raises InvalidGrant: unknown user, wrong password or disabled user.
    """
    ext, store = state.extension, state.store
    username = ext.normalize_username(raw_username)
    if not username:
        raise InvalidRequest("'username' must be a non-empty string.")
    # Counted before the password is checked, so parallel guesses cannot overtake
    # the limit; refused here, no hash is computed.
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    client = state.flood.client(client_address())

    def too_many() -> None:
        signals.login_failed.send(
            app,
            username=username,
            address=client_address(),
            reason="too_many_attempts",
        )

    name = FloodControl.user_key(username)
    try:
        reservation = state.flood.reserve(
            ip=client, user=f"{client} {name}", account=name
        )
    except TooManyRequests:
        too_many()
        raise
    try:
        with store.unavailable_on_error():
            user = ext.find_user(username)
        if user is not None:
            # The account the lookup found, whatever spelling reached it (the
            # database's collation may match names the counter keeps apart).
            found = FloodControl.identity_key(ext.identity_key(user))
            reservation.extend(user=f"{client} {found}", account=found)
    except TemporarilyUnavailable:
        # An outage is not a failed attempt: it must not lock the account.
        reservation.cancel()
        raise
    except TooManyRequests:
        too_many()
        raise
    outcome = ext.check_password(
        user, password, attribute=state.settings.password_hash_attribute
    )
    failure = outcome.failure
    rehashed = ext.hash_password(password) if outcome.outdated and not failure else None
    if rehashed is not None:
        # The application owns the user table: it stores the new hash.
        signals.password_rehashed.send(app, user=user, password_hash=rehashed)
    if failure is not None:
        signals.login_failed.send(
            app, username=username, address=client_address(), reason=failure
        )
        # One answer for every failure, so it tells nothing of which one it was.
        raise InvalidGrant("Invalid username or password.")
    reservation.succeeded()
    return user


def client_address() -> str:
    """The client address limits count by: ``request.remote_addr``.

    Behind a proxy, install Werkzeug's ``ProxyFix`` so that this is the client's
    address; ``X-Forwarded-For`` is never read here, as anyone can send it.
    """
    return request.remote_addr or "unknown"


@dataclasses.dataclass(frozen=True)
class Rotation:
    """A refresh token consumed and its successor issued (uncommitted)."""

    user: t.Any
    session_id: str
    refresh_token: str
    refresh_expires_at: int
    #: When the session's user last gave a password (RFC 9470).
    auth_time: int
    #: The DPoP key the session is bound to, if any.
    dpop_jkt: str | None = None


def rotate(
    state: AppState, presented: str, now: int, dpop_jkt: str | None = None
) -> Rotation:
    """Consume the presented refresh token and issue its successor, uncommitted:
    the caller signs the access token, then commits (``views._issue``).

    A consumed token presented again ends its whole session (reuse), except for
    the grace window's one re-presentation; a disabled or deleted user ends
    every session of the user.

    :raises InvalidGrant: the token is unknown, expired, revoked, reused, or its
        session has reached its maximum lifetime.
    :param dpop_jkt: the key of the request's DPoP proof, if any: a session
        bound to a key (RFC 9449 §5) is refreshed only with a proof by it.
    :raises AccessDenied: the user may not refresh tokens.
    :raises InvalidDPoPProof: the session is bound to a key and the request has
        no proof.
    """
    store, settings = state.store, state.settings
    record = store.find_refresh_token(presented)
    if record is None:
        raise InvalidGrant("The refresh token is unknown.")
    if record.session_revoked:
        raise InvalidGrant("The refresh token's session has been revoked.")
    # A token bound to a key is worth nothing without it (RFC 9449 §5): whoever
    # lacks the key cannot even end the session by replaying an old token.
    if record.dpop_jkt is not None and dpop_jkt != record.dpop_jkt:
        if dpop_jkt is None:
            raise InvalidDPoPProof(
                "This refresh token is bound to a DPoP key: send a proof by it."
            )
        raise InvalidGrant("The refresh token is bound to another DPoP key.")
    # A consumed token presented again is evidence of theft, expired or not.
    if record.consumed and not _within_grace(state, record, now):
        _reused(state, record, now)
    if now >= record.expires_at:
        raise InvalidGrant("The refresh token has expired.")
    user = state.extension.load_user(json.loads(record.user_key))
    if user is None or not is_active(user):
        # Disabling a user ends every session of it, not just this one.
        store.revoke_user_sessions(record.user_key, now=now, reason="user disabled")
        store.commit()
        raise InvalidGrant("The refresh token's user is unknown or disabled.")
    if not state.extension.has_permission(user, ACCESS_PERMISSION):
        store.rollback()
        raise AccessDenied("You may not refresh tokens.")
    expires_at = settings.refresh_expiry(now, record.session_created_at)
    if expires_at <= now:
        raise InvalidGrant("The login session has reached its maximum lifetime.")
    if record.consumed:
        new_token = _grace_branch(state, record, now, expires_at)
    else:
        rotated = store.rotate(record, now=now, expires_at=expires_at)
        if rotated is None:
            # Another request consumed it first: a second use, forgiven only
            # within the grace window.
            store.rollback()
            again = store.find_refresh_token(presented)
            if again is None or not _within_grace(state, again, now):
                _reused(state, record, now)
            rotated = _grace_branch(state, again, now, expires_at)
        new_token = rotated
    # A refresh keeps the session's auth_time (RFC 9470): only a password
    # makes a token fresh again.
    return Rotation(
        user=user,
        session_id=str(record.session_id),
        refresh_token=new_token,
        refresh_expires_at=expires_at,
        auth_time=record.auth_time or record.session_created_at,
        dpop_jkt=record.dpop_jkt,
    )


def _within_grace(state: AppState, record: RefreshRecord, now: int) -> bool:
    """Whether a consumed token may be presented again: within the grace period
    after its use, and only while its successor is unused (so it is the
    immediately previous token, not an older one)."""
    grace = state.settings.refresh_grace_period
    return (
        grace > 0
        and record.consumed_at is not None
        and now - record.consumed_at <= grace
        and state.store.successor_is_live(record)
    )


def _grace_branch(
    state: AppState, record: RefreshRecord, now: int, expires_at: int
) -> str:
    """The grace window's one re-presentation of a consumed token (a client that
    lost the answer): a new successor, once. Of concurrent re-presentations one
    wins; any other, now or later, is reuse."""
    if not state.store.claim_grace(record, now=now):
        state.store.rollback()
        _reused(state, record, now)
    return state.store.branch(record, now=now, expires_at=expires_at)


def _reused(state: AppState, record: RefreshRecord, now: int) -> t.NoReturn:
    """A consumed refresh token came back: end its whole session, and say so."""
    state.store.revoke_session(record.session_id, now=now, reason="reuse")
    state.store.commit()
    signals.refresh_token_reused.send(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        session_id=str(record.session_id),
        identity=json.loads(record.user_key),
        address=client_address(),
    )
    raise InvalidGrant(_REUSED)
