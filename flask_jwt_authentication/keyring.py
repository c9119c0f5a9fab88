"""The key set each worker keeps in memory, reloaded from the keys table at most
every ``JWT_AUTH_KEYS_REFRESH_INTERVAL`` seconds (see :mod:`.keystore`)."""

from __future__ import annotations

import logging
import time

from cryptography.fernet import InvalidToken as FernetInvalidToken
from flask import has_request_context

from .errors import TemporarilyUnavailable
from .keys import Key
from .keys import KeySet
from .keystore import CURRENT
from .keystore import NEXT
from .keystore import RETIRED
from .keystore import RETIRING
from .keystore import KeyStore
from .keystore import Retirement
from .keystore import key_from_material
from .periodic import Periodic

logger = logging.getLogger("flask_jwt_authentication")


class KeyRing:
    """The key set of one application, kept in memory and reloaded from the
    database at most every ``interval`` seconds.

    :param configured: the key from configuration, or ``None``. It signs while the
        database has no current key, and verifies after one takes over.
    :param store: the stored keys.
    :param algorithm: the configured algorithm; keys of other algorithms are
        ignored.
    :param interval: seconds between reloads.
    """

    def __init__(
        self,
        configured: KeySet | None,
        store: KeyStore,
        algorithm: str,
        interval: float,
    ) -> None:
        self.configured = configured
        self.store = store
        self.algorithm = algorithm
        self._reloads = Periodic(interval, "signing keys")
        self._keyset = configured
        self._parsed: dict[str, Key] = {}

    @property
    def interval(self) -> float:
        """Seconds between reloads."""
        return self._reloads.interval

    def keyset(self) -> KeySet:
        """The current key set.

        In a request it is the one :meth:`refresh` loaded when the request began
        (or, with none loaded yet, one loaded now); elsewhere it is reloaded first
        if older than the interval.

        :raises TemporarilyUnavailable: there is no signing key at all yet.
        """
        if self._reloads.due and (self._keyset is None or not has_request_context()):
            self._reload()
        if self._keyset is None:
            logger.error(
                "No signing key: configure one or run `flask jwt keys rotate`."
            )
            raise TemporarilyUnavailable("No signing key is available.")
        return self._keyset

    def refresh(self) -> None:
        """Reload the stored keys if they are older than the interval.

        Runs before each request (``before_request``), before the request takes
        a database connection: a reload needs a pooled connection of its own,
        and waiting for one while holding another (and perhaps a write lock)
        could stall every request once the pool is exhausted.
        """
        if self._reloads.due:
            self._reload()

    def use_algorithm(self, algorithm: str, configured: KeySet | None) -> None:
        """Sign and verify with ``algorithm`` from now on (a run-time settings
        change): its configured key, if any, and its stored keys, loaded on the
        next use."""
        with self._reloads.lock:
            self.algorithm = algorithm
            self.configured = configured
            self._keyset = configured
            self._parsed.clear()
            self._reloads.invalidate()

    def invalidate(self) -> None:
        """Reload on the next use (after a change made by this process)."""
        self._reloads.invalidate()

    def retire(self, kid: str) -> Retirement | None:
        """Retire any key, the configured one included (see
        :meth:`KeyStore.retire`); this process follows at once, the others on
        their next reload."""
        configured = self.configured.current if self.configured is not None else None
        try:
            return self.store.retire(kid, configured=configured)
        finally:
            self.invalidate()

    def unretire(self, kid: str) -> bool:
        """Undo the retirement of the configured key (see
        :meth:`KeyStore.unretire`)."""
        try:
            return self.store.unretire(kid)
        finally:
            self.invalidate()

    def _reload(self) -> None:
        # Callers take the key set before any database work (see views._issue):
        # waiting here while holding a pooled connection could exhaust the pool.
        # A failed load keeps verifying with what we have.
        self._reloads.run(self._load)

    def _load(self) -> None:
        configured_kid = (
            self.configured.current.kid if self.configured is not None else None
        )
        rows = self.store.load(self.algorithm, time.time(), configured_kid)
        self._keyset = self._build(rows)

    def _key(self, kid: str, encrypted: str) -> Key | None:
        key = self._parsed.get(kid)
        if key is None:
            if self.store.encryption is None:
                logger.error(
                    "Stored keys exist but JWT_AUTH_KEY_ENCRYPTION_KEY is unset."
                )
                return None
            try:
                material = self.store.encryption.decrypt(encrypted.encode("ascii"))
            except FernetInvalidToken:
                logger.error(
                    "Stored key %s cannot be decrypted with the configured"
                    " JWT_AUTH_KEY_ENCRYPTION_KEY.",
                    kid,
                )
                return None
            key = key_from_material(self.algorithm, material)
            self._parsed[kid] = key
        return key

    def _build(self, rows: list[tuple[str, str, str]]) -> KeySet | None:
        by_state: dict[str, list[Key]] = {NEXT: [], CURRENT: [], RETIRING: []}
        configured_retired = False
        for kid, state, encrypted in rows:
            if state == RETIRED:
                configured_retired = True
                continue
            key = self._key(kid, encrypted)
            if key is not None:
                by_state[state].append(key)
        # The parse cache holds the keys in use and no others: bounded by the
        # number of next, current and retiring keys, however often keys rotate.
        loaded = {kid for kid, _, _ in rows}
        for kid in list(self._parsed):
            if kid not in loaded:
                del self._parsed[kid]
        configured = self.configured.current if self.configured is not None else None
        if configured_retired:
            # Retired in the database: never signs or verifies again, on any
            # worker, unless `flask jwt keys unretire` undoes it.
            configured = None
        retiring = by_state[RETIRING]
        if by_state[CURRENT]:
            current = by_state[CURRENT][0]
            if configured is not None and configured.kid != current.kid:
                # Tokens signed before stored keys took over keep verifying.
                retiring.append(configured)
        elif configured is not None:
            current = configured
        else:
            return None
        return KeySet(
            current=current, next=tuple(by_state[NEXT]), retiring=tuple(retiring)
        )
