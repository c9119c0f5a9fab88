"""What DPoP (RFC 9449) keeps across requests: the server nonces and the proofs
seen.

* Nonces (RFC 9449 §8, §9; ``JWT_AUTH_DPOP_NONCE``): a keyed hash of the current
  minute under a secret derived from ``SECRET_KEY``. Every worker that shares
  the secret computes the same nonce, so nothing is stored and nothing is asked;
  a nonce is good for its minute and the next one.
* Proofs seen (RFC 9449 §11.1): each ``jti`` is accepted once per key, remembered
  until the proof's window has passed, in one place every worker asks: the
  database, or Redis (``JWT_AUTH_DPOP_REDIS_URL``, one ``SET NX`` per proof,
  sent before the signature is verified and read after it). A verify-only
  resource server without Redis remembers them in memory.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import hmac
import inspect
import logging
import threading
import typing as t

from .errors import ConfigurationError
from .errors import TemporarilyUnavailable
from .keys import b64url
from .settings_registry import read

if t.TYPE_CHECKING:
    from flask import Flask

    from .store import Store

logger = logging.getLogger("flask_jwt_authentication")

#: Seconds one nonce is handed out for; it is accepted for one period more.
NONCE_PERIOD = 60
#: The most DPoP proofs a process remembers at once without a shared store.
MAX_REMEMBERED_PROOFS = 100_000
#: The shortest SECRET_KEY nonces are derived from, in bytes.
MIN_SECRET_LENGTH = 32
#: The prefix of the Redis keys of the proofs seen.
REDIS_PREFIX = "flask_jwt_authentication:dpop:"


class Nonces:
    """Server-provided nonces, stateless: ``HMAC(secret, period number)``.

    :param secret: shared by every worker (and never sent anywhere).
    :param period: seconds a nonce is current.
    """

    def __init__(self, secret: bytes, period: int = NONCE_PERIOD) -> None:
        self._key = hmac.new(
            secret, b"flask_jwt_authentication DPoP nonce", hashlib.sha256
        ).digest()
        self._period = period
        self._made: dict[int, str] = {}

    def _nonce(self, number: int) -> str:
        nonce = self._made.get(number)
        if nonce is None:
            digest = hmac.new(self._key, number.to_bytes(8, "big"), hashlib.sha256)
            nonce = b64url(digest.digest()[:18])
            # Only the current and the previous period are ever asked for.
            self._made = {n: v for n, v in self._made.items() if n >= number - 1}
            self._made[number] = nonce
        return nonce

    def current(self, now: float) -> str:
        """The nonce to hand out now (the ``DPoP-Nonce`` header)."""
        return self._nonce(int(now // self._period))

    def accepts(self, nonce: object, now: float) -> bool:
        """Whether ``nonce`` is the current or the previous period's nonce."""
        if not isinstance(nonce, str):
            return False
        number = int(now // self._period)
        given = nonce.encode("utf-8", "replace")
        return any(
            hmac.compare_digest(given, self._nonce(n).encode())
            for n in (number, number - 1)
        )


class PendingProof(t.Protocol):
    """A proof whose record has been asked for (see :meth:`ProofLog.begin`)."""

    def fresh(self) -> bool:
        """Whether the proof was new and is now recorded; ``False``: a replay.

        :raises TemporarilyUnavailable: the store cannot be reached.
        """

    def cancel(self) -> None:
        """The proof turned out invalid: leave nothing recorded of it."""


class ProofLog(t.Protocol):
    """Where the proofs seen are kept."""

    def begin(self, jkt: str, jti: str, *, expires_at: int, now: int) -> PendingProof:
        """Start recording a proof while its signature is verified; the answer
        comes from the result's :meth:`~PendingProof.fresh`, and
        :meth:`~PendingProof.cancel` undoes it.

        :raises TemporarilyUnavailable: the store cannot be reached.
        """


class _Later:
    """A record made only when :meth:`fresh` asks (``use()``, which says
    whether the proof was new): nothing to cancel."""

    def __init__(self, use: t.Callable[[], bool]) -> None:
        self._use = use

    def fresh(self) -> bool:
        return self._use()

    def cancel(self) -> None:
        return None


class MemoryProofLog:
    """The proofs seen by this process, in memory: for a verify-only resource
    server without Redis (one worker, or each worker on its own)."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def begin(self, jkt: str, jti: str, *, expires_at: int, now: int) -> PendingProof:
        return _Later(
            functools.partial(self.use, jkt, jti, expires_at=expires_at, now=now)
        )

    def use(self, jkt: str, jti: str, *, expires_at: int, now: int) -> bool:
        """Record a proof at once; ``False`` if it was seen before (a replay)."""
        with self._lock:
            if len(self._seen) >= MAX_REMEMBERED_PROOFS:
                self._seen = {k: v for k, v in self._seen.items() if v >= now}
                if len(self._seen) >= MAX_REMEMBERED_PROOFS:
                    raise TemporarilyUnavailable("Too many DPoP proofs at once.")
            key = (jkt, jti)
            if self._seen.get(key, -1) >= now:
                return False
            self._seen[key] = expires_at
            return True


class DatabaseProofLog:
    """The proofs seen, in the ``jwt_auth_dpop_proofs`` table; a row is
    written only for a proof whose signature verified."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def begin(self, jkt: str, jti: str, *, expires_at: int, now: int) -> PendingProof:
        return _Later(
            functools.partial(self.use, jkt, jti, expires_at=expires_at, now=now)
        )

    def use(self, jkt: str, jti: str, *, expires_at: int, now: int) -> bool:
        """Record a proof at once; ``False`` if it was seen before (a replay)."""
        store = self._store
        with store.unavailable_on_error():
            return store.use_proof(jkt, jti, expires_at=expires_at, now=now)


class RedisProofLog:
    """The proofs seen, in Redis: one ``SET NX EXAT`` per proof, which Redis
    forgets when the proof's window has passed. Keys hold a hash of the key
    thumbprint and the ``jti``, never the proof.

    :meth:`begin` sends the ``SET`` and returns at once: Redis answers while
    the signature is verified, so the round trip costs next to nothing. A
    proof whose signature fails is deleted again (a second round trip, on
    that path only)."""

    def __init__(self, url: str) -> None:
        import redis

        self._errors: tuple[type[Exception], ...] = (redis.RedisError, OSError)
        self._client = redis.Redis.from_url(
            url, socket_timeout=1.0, socket_connect_timeout=1.0
        )
        self._pool = self._client.connection_pool
        # redis 5 names the command; later versions want no argument.
        command = inspect.signature(self._pool.get_connection).parameters.get(
            "command_name"
        )
        self._connection_arguments: tuple[str, ...] = (
            ("SET",)
            if command is not None and command.default is inspect.Parameter.empty
            else ()
        )

    def begin(self, jkt: str, jti: str, *, expires_at: int, now: int) -> PendingProof:
        key = REDIS_PREFIX + hashlib.sha256(f"{jkt}:{jti}".encode()).hexdigest()
        try:
            connection: t.Any = self._pool.get_connection(*self._connection_arguments)
        except self._errors as e:
            raise self.unavailable(e) from e
        try:
            connection.send_command(
                "SET", key, b"", "NX", "EXAT", max(expires_at, now + 1)
            )
        except self._errors as e:
            self._drop(connection)
            raise self.unavailable(e) from e
        return _RedisPending(self, connection, key)

    def unavailable(self, error: Exception) -> TemporarilyUnavailable:
        """Log a Redis failure; the 503 to raise."""
        logger.error("Redis unavailable for DPoP proofs (%s).", type(error).__name__)
        return TemporarilyUnavailable()

    def reply(self, connection: t.Any) -> object:
        """Read the answer to the command sent on ``connection`` and give the
        connection back to the pool.

        :raises TemporarilyUnavailable: Redis did not answer.
        """
        try:
            answer = connection.read_response()
        except self._errors as e:
            self._drop(connection)
            raise self.unavailable(e) from e
        self._pool.release(connection)
        return answer

    def forget(self, key: str) -> None:
        """Delete the record of a proof that turned out invalid."""
        try:
            self._client.delete(key)
        except self._errors as e:
            logger.warning(
                "Could not delete an invalid DPoP proof's record from Redis (%s);"
                " it expires within a minute.",
                type(e).__name__,
            )

    def _drop(self, connection: t.Any) -> None:
        connection.disconnect()
        self._pool.release(connection)


class _RedisPending:
    def __init__(self, log: RedisProofLog, connection: t.Any, key: str) -> None:
        self._log = log
        self._connection = connection
        self._key = key

    def fresh(self) -> bool:
        return self._log.reply(self._connection) is not None

    def cancel(self) -> None:
        try:
            stored = self._log.reply(self._connection) is not None
        except TemporarilyUnavailable:
            return  # the connection is gone; whether it was stored is unknown
        if stored:
            self._log.forget(self._key)


@dataclasses.dataclass
class DPoPState:
    """The nonces (``None``: not asked for) and where the proofs seen are kept."""

    proofs: ProofLog
    nonces: Nonces | None = None


def load_dpop_state(app: Flask, store: Store | None) -> DPoPState:
    """Build what DPoP keeps from ``app``'s configuration.

    :param store: the database store; ``None`` on a verify-only resource server.
    :raises ConfigurationError: nonces are asked for without DPoP or without a
        ``SECRET_KEY``, or a Redis URL is set without the redis package.
    """
    config = app.config
    dpop_on = read(config, "JWT_AUTH_DPOP") is not None
    nonces = None
    if read(config, "JWT_AUTH_DPOP_NONCE"):
        if not dpop_on:
            raise ConfigurationError(
                "JWT_AUTH_DPOP_NONCE is set but JWT_AUTH_DPOP is off: set"
                " JWT_AUTH_DPOP to 'allowed' or 'required', or remove the nonce.",
                setting="JWT_AUTH_DPOP_NONCE",
            )
        secret = config.get("SECRET_KEY")
        if isinstance(secret, str):
            secret = secret.encode()
        if not isinstance(secret, bytes) or not secret:
            raise ConfigurationError(
                "JWT_AUTH_DPOP_NONCE needs SECRET_KEY: the nonces are derived from"
                " it. Set the same SECRET_KEY on every worker.",
                setting="JWT_AUTH_DPOP_NONCE",
            )
        if len(secret) < MIN_SECRET_LENGTH:
            raise ConfigurationError(
                f"JWT_AUTH_DPOP_NONCE needs a SECRET_KEY of at least"
                f" {MIN_SECRET_LENGTH} bytes (whoever guesses it can make nonces):"
                " use secrets.token_urlsafe(64), the same on every worker.",
                setting="JWT_AUTH_DPOP_NONCE",
            )
        nonces = Nonces(secret)
    # An auth server in push mode over Redis keeps its proofs there too.
    name = "JWT_AUTH_DPOP_REDIS_URL"
    url = read(config, name)
    if url is None and store is not None:
        name = "JWT_AUTH_REVOCATION_REDIS_URL"
        url = read(config, name)
    if read(config, "JWT_AUTH_DPOP_REDIS_URL") and not dpop_on:
        raise ConfigurationError(
            "JWT_AUTH_DPOP_REDIS_URL is set but JWT_AUTH_DPOP is off: set"
            " JWT_AUTH_DPOP to 'allowed' or 'required', or remove the URL.",
            setting="JWT_AUTH_DPOP_REDIS_URL",
        )
    proofs: ProofLog
    if url and dpop_on:
        try:
            proofs = RedisProofLog(url)
        except ImportError:
            raise ConfigurationError(
                f"{name} needs the redis package: pip install"
                " 'flask_jwt_authentication[redis]'.",
                setting=name,
            ) from None
    elif store is not None:
        proofs = DatabaseProofLog(store)
    else:
        proofs = MemoryProofLog()
    return DPoPState(proofs=proofs, nonces=nonces)
