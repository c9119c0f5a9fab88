"""The administrators' sign-in: a login session in the extension's sessions
table, named by a signed, HttpOnly cookie.

The cookie holds only the session's id, signed with the app's ``SECRET_KEY``
(session ids are shown to administrators, so the signature is what makes the
cookie unforgeable). Every admin request loads the session again and checks that
it is live, that its user still exists and is active, and that the user may
administer: signing out, :meth:`~.JWTAuthentication.revoke_sessions`, disabling
the user or taking the permission away ends the admin's access on the next
request.
"""

from __future__ import annotations

import dataclasses
import json
import time
import typing as t
import uuid

from flask import current_app
from flask import g
from flask import request
from itsdangerous import BadSignature
from itsdangerous import URLSafeSerializer

from ..passwords import is_active
from ..settings_registry import read
from ..state import ADMINISTER_PERMISSION
from ..state import get_state

if t.TYPE_CHECKING:
    from werkzeug.wrappers import Response

#: The cookie naming the admin's login session.
COOKIE_NAME = "jwt_auth_admin_session"
_SALT = "flask_jwt_authentication.admin.session"
#: Longer cookies are not even unsigned: ours are about 80 characters.
_MAX_COOKIE_LENGTH = 256
_CACHE = "_jwt_auth_administrator"

#: Why a session ended, as the sessions table records it.
SIGNED_OUT = "admin sign-out"
SIGNED_IN_AGAIN = "admin signed in again"


@dataclasses.dataclass(frozen=True)
class Administrator:
    """Who is signed in to the admin pages in this request.

    :param user: the user object, as the user loader returned it.
    :param session_id: the admin login session.
    :param permitted: whether the user may administer (asked on every request).
    """

    user: t.Any
    session_id: uuid.UUID
    permitted: bool

    @property
    def name(self) -> str:
        """What the pages call the user: its ``username``, else its identity."""
        username = getattr(self.user, "username", None)
        if isinstance(username, str) and username:
            return username
        return str(get_state().extension.identity_of(self.user))


def _serializer() -> URLSafeSerializer:
    secret = t.cast("str | bytes", current_app.secret_key)
    return URLSafeSerializer(secret, salt=_SALT)


def _cookie_session_id() -> uuid.UUID | None:
    """The session id of the request's admin cookie, if it is ours and intact."""
    value = request.cookies.get(COOKIE_NAME)
    if not value or len(value) > _MAX_COOKIE_LENGTH:
        return None
    try:
        session_id = _serializer().loads(value)
        return uuid.UUID(str(session_id))
    except (BadSignature, ValueError):
        return None


def current_administrator() -> Administrator | None:
    """The user signed in to the admin pages, checked once per request.

    ``None`` when there is no cookie, or its session has ended or expired, or its
    user no longer exists or is disabled.

    :raises TemporarilyUnavailable: the database cannot be reached.
    """
    if _CACHE not in g:
        setattr(g, _CACHE, None)  # an outage below leaves the request anonymous
        setattr(g, _CACHE, _load_administrator())
    return t.cast("Administrator | None", getattr(g, _CACHE))


def _load_administrator() -> Administrator | None:
    session_id = _cookie_session_id()
    if session_id is None:
        return None
    state = get_state()
    store = state.store
    with store.unavailable_on_error():
        owner = store.live_session_owner(session_id, now=int(time.time()))
        if owner is None:
            return None
        user = state.extension.load_user(json.loads(owner))
    if user is None or not is_active(user):
        return None
    # Asked on every request, so taking the permission away takes effect at once.
    permitted = state.extension.has_permission(user, ADMINISTER_PERMISSION)
    return Administrator(user=user, session_id=session_id, permitted=permitted)


def start_admin_session(user: t.Any, lifetime: int) -> str:
    """Start an admin login session for ``user`` and return the cookie value.

    A session the request's cookie still names is ended first, so signing in
    again never leaves the old one usable.

    :param user: the user who signed in.
    :param lifetime: seconds until the session ends.
    """
    state = get_state()
    store = state.store
    now = int(time.time())
    previous = _cookie_session_id()
    with store.unavailable_on_error():
        if previous is not None:
            store.revoke_session(previous, now=now, reason=SIGNED_IN_AGAIN)
        session_id = store.insert_session(
            state.extension.identity_key(user),
            now=now,
            expires_at=now + lifetime,
            client_ip=request.remote_addr,
            user_agent=request.user_agent.string,
        )
        store.commit()
    setattr(g, _CACHE, None)
    return _serializer().dumps(str(session_id))


def end_admin_session() -> None:
    """End the admin login session the request's cookie names, if any."""
    session_id = _cookie_session_id()
    setattr(g, _CACHE, None)
    if session_id is None:
        return
    store = get_state().store
    with store.unavailable_on_error():
        store.revoke_session(session_id, now=int(time.time()), reason=SIGNED_OUT)
        store.commit()


def set_admin_cookie(
    response: Response, value: str | None, *, path: str, max_age: int = 0
) -> None:
    """Set the admin cookie on ``response``, or delete it when ``value`` is
    ``None``.

    HttpOnly (no script reads it), SameSite=Lax (no cross-site form post carries
    it; the CSRF tokens are the second line), sent only to the admin's own pages,
    and Secure unless ``JWT_AUTH_ADMIN_COOKIE_SECURE`` is false: behind a proxy
    that ends TLS the request itself looks like plain HTTP, so it is no guide.
    Browsers keep Secure cookies of ``http://localhost`` too.
    """
    options: dict[str, t.Any] = {
        "path": path,
        "secure": read(current_app.config, "JWT_AUTH_ADMIN_COOKIE_SECURE"),
        "httponly": True,
        "samesite": "Lax",
    }
    if value is None:
        response.delete_cookie(COOKIE_NAME, **options)
    else:
        response.set_cookie(COOKIE_NAME, value, max_age=max_age, **options)
