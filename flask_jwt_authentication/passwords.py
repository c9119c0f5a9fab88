"""Password verification with the guard against username enumeration.

Every failed log-in, whatever the reason (unknown user, wrong password, disabled
user, a stored hash that cannot be used), costs exactly one hash verification and
ends in the same answer, so neither the response nor its timing tells an attacker
which usernames exist (OWASP Authentication Cheat Sheet, "Authentication Responses").
"""

from __future__ import annotations

import logging
import secrets
import threading
import typing as t

from werkzeug.security import check_password_hash
from werkzeug.security import generate_password_hash

logger = logging.getLogger("flask_jwt_authentication")


class PasswordVerifier(t.Protocol):
    """``(stored_hash, password) -> bool``; may raise ``ValueError`` for a hash it
    cannot read."""

    def __call__(self, stored_hash: str, password: str, /) -> bool: ...


class DummyHash:
    """A hash of a random password, made once, lazily, with the default method.

    It is verified in place of a real user's hash so that a failed log-in costs
    the same whether or not the user exists.
    """

    def __init__(self, value: str | None = None) -> None:
        self._value = value
        self._lock = threading.Lock()

    def get(self) -> str:
        """The dummy hash, made on first use."""
        if self._value is None:
            with self._lock:
                if self._value is None:
                    self._value = generate_password_hash(secrets.token_urlsafe(24))
        return self._value


def werkzeug_verifier(stored_hash: str, password: str) -> bool:
    """The default verifier: Werkzeug's hash formats (scrypt, pbkdf2).

    :raises ValueError: ``stored_hash`` is not ``method$salt$hash``. Werkzeug would
        return ``False`` at once without hashing, which a clock tells apart from a
        wrong password; raising makes :func:`check_credentials` pay for the dummy
        hash instead.
    """
    if stored_hash.count("$") < 2:
        raise ValueError("Not a Werkzeug password hash.")
    return check_password_hash(stored_hash, password)


def is_active(user: object) -> bool:
    """False only for a user whose ``is_active`` attribute exists and is false."""
    return bool(getattr(user, "is_active", True))


#: Why a log-in failed, as :data:`~flask_jwt_authentication.signals.login_failed`
#: reports it. The client never learns which one it was.
UNKNOWN_USER = "unknown_user"
WRONG_PASSWORD = "wrong_password"
DISABLED_USER = "disabled_user"
UNUSABLE_HASH = "unusable_hash"


def check_credentials(
    user: object | None,
    password: str,
    *,
    attribute: str,
    verify: PasswordVerifier,
    dummy_hash: str,
) -> str | None:
    """Check ``password`` for ``user`` at the cost of exactly one verification.

    :param user: what the user lookup returned, ``None`` for an unknown user.
    :param password: the password presented.
    :param attribute: the user's attribute holding its hash.
    :param verify: the password verifier.
    :param dummy_hash: verified instead when there is no usable hash.
    :returns: ``None`` when the log-in succeeds, else why it failed (one of
        :data:`UNKNOWN_USER`, :data:`WRONG_PASSWORD`, :data:`DISABLED_USER`,
        :data:`UNUSABLE_HASH`).
    """
    if user is None:
        verify(dummy_hash, password)
        return UNKNOWN_USER
    stored = getattr(user, attribute, None)
    if not isinstance(stored, str) or not stored:
        verify(dummy_hash, password)
        return UNUSABLE_HASH
    try:
        matches = verify(stored, password)
    except (ValueError, TypeError):
        # An unreadable hash fails fast: pay the verification cost anyway.
        logger.warning("A user's stored password hash cannot be verified.")
        verify(dummy_hash, password)
        return UNUSABLE_HASH
    if not matches:
        return WRONG_PASSWORD
    return None if is_active(user) else DISABLED_USER
