"""Password verification with the guard against username enumeration.

Every failed log-in, whatever the reason (unknown user, wrong password, disabled
user, a stored hash that cannot be used), costs exactly one hash verification and
ends in the same answer, so neither the response nor its timing tells an attacker
which usernames exist (OWASP Authentication Cheat Sheet, "Authentication Responses").

A stored hash made with older, cheaper parameters than the current ones (those of
the dummy hash) verifies faster; the difference is spent waiting, as Django's
``harden_runtime`` does, so that such a user is not told apart either. A
successful log-in with such a hash re-hashes the password with the current
parameters and hands the new hash to the application (the ``password_rehashed``
signal), as Django's ``check_password`` setter and Flask-Security's
``verify_and_update_password`` do; old hashes then disappear as users log in.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import secrets
import statistics
import threading
import time
import typing as t

from werkzeug.security import check_password_hash
from werkzeug.security import generate_password_hash

logger = logging.getLogger("flask_jwt_authentication")


class PasswordVerifier(t.Protocol):
    """``(stored_hash, password) -> bool``; may raise ``ValueError`` for a hash it
    cannot read."""

    def __call__(self, stored_hash: str, password: str, /) -> bool: ...


class PasswordHasher(t.Protocol):
    """``(password) -> hash``: a new hash with the current method and parameters."""

    def __call__(self, password: str, /) -> str: ...


class NeedsRehash(t.Protocol):
    """``(stored_hash, current_dummy_hash) -> bool``: whether ``stored_hash`` was
    made with another method or other parameters than the current ones."""

    def __call__(self, stored_hash: str, current: str, /) -> bool: ...


class DummyHash:
    """A hash of a random password with the current method and parameters.

    It is verified in place of a real user's hash so that a failed log-in costs
    the same whether or not the user exists. The extension makes it when it is
    initialised on an application (:meth:`get`), never inside a log-in, so even a
    fresh process's first failed log-in costs one hash and no more.

    It also keeps the recent durations of verifications at the current
    parameters: what a verification of an outdated, cheaper hash is padded to.
    """

    def __init__(self, value: str | None = None) -> None:
        self._value = value
        self._lock = threading.Lock()
        self._durations: collections.deque[float] = collections.deque(maxlen=15)

    def get(self) -> str:
        """The dummy hash, made (with Werkzeug's default method) on first use."""
        if self._value is None:
            with self._lock:
                if self._value is None:
                    start = time.perf_counter()
                    value = generate_password_hash(secrets.token_urlsafe(24))
                    self._durations.append(time.perf_counter() - start)
                    self._value = value
        return self._value

    def record(self, seconds: float) -> None:
        """Note how long a verification at the current parameters took."""
        self._durations.append(seconds)

    def cost(self) -> float:
        """The median of the recent verifications at the current parameters
        (0 before any)."""
        durations = list(self._durations)
        return statistics.median(durations) if durations else 0.0


def werkzeug_method(stored_hash: str) -> str:
    """The method and parameters part of a Werkzeug hash: ``scrypt:32768:8:1``."""
    return stored_hash.split("$", 1)[0]


def werkzeug_needs_rehash(stored_hash: str, current: str) -> bool:
    """The default check: the Werkzeug method or parameters differ from the
    current dummy hash's (``pbkdf2:sha256:600000`` against ``scrypt:32768:8:1``,
    or a lower iteration count)."""
    return werkzeug_method(stored_hash) != werkzeug_method(current)


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


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What :func:`check_credentials` found.

    :param failure: ``None`` when the log-in succeeds, else why it failed (one of
        :data:`UNKNOWN_USER`, :data:`WRONG_PASSWORD`, :data:`DISABLED_USER`,
        :data:`UNUSABLE_HASH`).
    :param outdated: the stored hash has another method or older parameters
        than the current ones; on success the caller re-hashes the password.
    """

    failure: str | None
    outdated: bool = False


def check_credentials(
    user: object | None,
    password: str,
    *,
    attribute: str,
    verify: PasswordVerifier,
    dummy: DummyHash,
    needs_rehash: NeedsRehash | None = werkzeug_needs_rehash,
) -> Outcome:
    """Check ``password`` for ``user`` at the cost of exactly one verification.

    A failure with an outdated hash (see ``needs_rehash``) waits for the
    difference to a verification at the current parameters, so it costs the same
    as every other failure (Django's ``harden_runtime``).

    :param user: what the user lookup returned, ``None`` for an unknown user.
    :param password: the password presented.
    :param attribute: the user's attribute holding its hash.
    :param verify: the password verifier.
    :param dummy: verified instead when there is no usable hash; its parameters
        are the current ones.
    :param needs_rehash: tells an outdated hash; ``None``: none is.
    """
    dummy_hash = dummy.get()
    if user is None:
        _timed(verify, dummy, dummy_hash, password)
        return Outcome(UNKNOWN_USER)
    stored = getattr(user, attribute, None)
    if not isinstance(stored, str) or not stored:
        _timed(verify, dummy, dummy_hash, password)
        return Outcome(UNUSABLE_HASH)
    outdated = needs_rehash is not None and needs_rehash(stored, dummy_hash)
    start = time.perf_counter()
    try:
        matches = verify(stored, password)
    except (ValueError, TypeError):
        # An unreadable hash fails fast: pay the verification cost anyway.
        logger.warning("A user's stored password hash cannot be verified.")
        _timed(verify, dummy, dummy_hash, password)
        return Outcome(UNUSABLE_HASH)
    elapsed = time.perf_counter() - start
    if not outdated:
        dummy.record(elapsed)
    failure = None
    if not matches:
        failure = WRONG_PASSWORD
    elif not is_active(user):
        failure = DISABLED_USER
    if outdated and failure is not None:
        # Spend the difference to the current parameters' cost: a failure must
        # not tell that this user exists (nor that its hash is old).
        time.sleep(max(0.0, dummy.cost() - elapsed))
    return Outcome(failure, outdated)


def _timed(
    verify: PasswordVerifier, dummy: DummyHash, dummy_hash: str, password: str
) -> None:
    start = time.perf_counter()
    verify(dummy_hash, password)
    dummy.record(time.perf_counter() - start)
