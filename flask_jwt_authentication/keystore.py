"""Signing keys stored in the database, encrypted at rest, and rotated without
downtime.

Each stored key has a state: ``next`` (published, verifies, does not sign yet),
``current`` (signs), ``retiring`` (verifies until every token it signed has
expired) and ``retired`` (neither). Every worker keeps the key set in memory and
reloads it at most every ``JWT_AUTH_KEYS_REFRESH_INTERVAL`` seconds, so a rotation
made by one process reaches all of them within that time, and a protected request
queries nothing for its keys.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import secrets
import time
import typing as t

import sqlalchemy as sa
from cryptography.fernet import MultiFernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.asymmetric import rsa

from .errors import ConfigurationError
from .keys import ALGORITHMS
from .keys import Key
from .keys import asymmetric_key
from .keys import hmac_key
from .models import read_apart
from .settings_registry import read

if t.TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

    from .config import Settings

logger = logging.getLogger("flask_jwt_authentication")

NEXT, CURRENT, RETIRING, RETIRED = "next", "current", "retiring", "retired"
STATES = (NEXT, CURRENT, RETIRING, RETIRED)


def key_encryption(value: t.Any) -> MultiFernet | None:
    """The key-encryption keys of a ``JWT_AUTH_KEY_ENCRYPTION_KEY`` value, parsed
    by the setting's parser (:func:`.settings_registry.fernet_keys`).

    One Fernet key, or a list of them: the first encrypts, all decrypt, so the
    key-encryption key itself can be rotated.

    :raises ConfigurationError: a value is not a Fernet key.
    """
    name = "JWT_AUTH_KEY_ENCRYPTION_KEY"
    return t.cast("MultiFernet | None", read({name: value}, name))


def retire_after(settings: Settings) -> int:
    """Until when a key that stops signing now must keep verifying: the tokens
    it signed live at most the access TTL, plus the leeway. ``flask jwt keys
    rotate`` and the admin's rotation use it."""
    return int(time.time()) + settings.access_token_ttl + settings.leeway


def generate_material(algorithm: str) -> bytes:
    """New private key material for ``algorithm``: a PEM private key, or for HMAC
    a random secret of twice the hash size."""
    family, detail = ALGORITHMS[algorithm]
    private: t.Any
    if family == "oct":
        return secrets.token_bytes(2 * int(detail))
    if family == "RSA":
        private = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    elif family == "EC":
        private = ec.generate_private_key(detail())
    else:
        private = ed25519.Ed25519PrivateKey.generate()
    return t.cast(
        bytes,
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def key_from_material(algorithm: str, material: bytes) -> Key:
    """A :class:`~.keys.Key` from stored material (see :func:`generate_material`)."""
    if ALGORITHMS[algorithm][0] == "oct":
        return hmac_key(algorithm, material, source="stored key")
    return asymmetric_key(algorithm, material, source="stored key")


#: The ``encrypted_key`` of the row recording that the configured key is retired:
#: not a Fernet token, so it can never be mistaken for stored key material.
CONFIGURED_MARKER = "configured"


@dataclasses.dataclass(frozen=True)
class Retirement:
    """What :meth:`KeyStore.retire` did."""

    kid: str
    #: The key that signs instead, when the retired key was the current one.
    replaced_by: str | None
    #: Whether the retired key is the configured one.
    configured: bool = False


@dataclasses.dataclass(frozen=True)
class StoredKey:
    """A key row as ``flask jwt keys list`` shows it: never the private part."""

    kid: str
    algorithm: str
    state: str
    created_at: int
    activated_at: int | None
    retire_after: int | None
    #: The public JWK (RFC 7517), ``None`` for HMAC secrets.
    public_jwk: dict[str, t.Any] | None = None


#: The order ``flask jwt keys list`` and the admin show the states in.
_STATE_RANK = {CURRENT: 0, NEXT: 1, RETIRING: 2, RETIRED: 3}


def _listing_order(key: StoredKey) -> tuple[int, int, int, int, str]:
    changed = key.activated_at if key.activated_at is not None else key.created_at
    return (
        _STATE_RANK.get(key.state, len(_STATE_RANK)),
        -(key.retire_after or 0),
        -changed,
        -key.created_at,
        key.kid,
    )


class KeyStore:
    """The queries on the keys table.

    :param db: the application's Flask-SQLAlchemy object.
    :param table: the keys table.
    :param encryption: the key-encryption keys; without them nothing can be stored.
    """

    def __init__(
        self, db: SQLAlchemy, table: sa.Table, encryption: MultiFernet | None
    ) -> None:
        self.db = db
        self.table = table
        self.encryption = encryption

    def _require_encryption(self) -> MultiFernet:
        if self.encryption is None:
            raise ConfigurationError(
                "Storing keys needs JWT_AUTH_KEY_ENCRYPTION_KEY (a Fernet key)."
            )
        return self.encryption

    def generate(self, algorithm: str, *, state: str = NEXT) -> Key:
        """Generate a key, store it encrypted in ``state`` and return it."""
        encryption = self._require_encryption()
        material = generate_material(algorithm)
        key = key_from_material(algorithm, material)
        now = int(time.time())
        self.db.session.execute(
            sa.insert(self.table).values(
                kid=key.kid,
                algorithm=algorithm,
                state=state,
                encrypted_key=encryption.encrypt(material).decode("ascii"),
                public_jwk=json.dumps(key.public_jwk) if key.public_jwk else None,
                created_at=now,
                activated_at=now if state == CURRENT else None,
            )
        )
        self.db.session.commit()
        return key

    def all_keys(self) -> list[StoredKey]:
        """Every stored key: by state (current, next, retiring, retired), then
        the most recently changed first.

        Times are whole seconds, so keys made in the same second (a rotation
        right after a generate) tie on them: the state decides first, then when
        the key last changed role, then the kid, so the order never
        depends on how the database happens to return the rows.
        """
        c = self.table.c
        rows = self.db.session.execute(
            sa.select(
                c.kid,
                c.algorithm,
                c.state,
                c.created_at,
                c.activated_at,
                c.retire_after,
                c.public_jwk,
            )
        )
        keys = [
            StoredKey(
                **{
                    **row._mapping,
                    "public_jwk": json.loads(row.public_jwk or "null"),
                }
            )
            for row in rows
        ]
        return sorted(keys, key=_listing_order)

    def rotate(
        self, algorithm: str, *, retire_after: int, kid: str | None = None
    ) -> tuple[str, str | None]:
        """Make the oldest ``next`` key (or ``kid``) current, generating one if
        there is none, and the current key retiring until ``retire_after``.

        :returns: the new current kid and the retiring one (``None`` if there was
            no current key).
        """
        c = self.table.c
        now = int(time.time())
        session = self.db.session
        upcoming = (
            kid
            or session.execute(
                sa.select(c.kid)
                .where(c.state == NEXT, c.algorithm == algorithm)
                .order_by(c.created_at, c.kid)
                .limit(1)
            ).scalar()
        )
        if upcoming is None:
            upcoming = self.generate(algorithm, state=NEXT).kid
        previous = (
            session.execute(
                sa.select(c.kid).where(c.state == CURRENT, c.algorithm == algorithm)
            )
            .scalars()
            .all()
        )
        session.execute(
            sa.update(self.table)
            .where(c.state == CURRENT, c.algorithm == algorithm)
            .values(state=RETIRING, retire_after=retire_after)
        )
        session.execute(
            sa.update(self.table)
            .where(c.kid == upcoming)
            .values(state=CURRENT, activated_at=now)
        )
        session.commit()
        return upcoming, (previous[0] if previous else None)

    def retire(self, kid: str, *, configured: Key | None = None) -> Retirement | None:
        """Stop verifying with key ``kid`` at once, whatever its state: after a
        leak, the tokens it signed must stop working everywhere.

        A next or retiring key is retired. The current key is first replaced, as
        :meth:`rotate` does (the oldest next key, or a new one), but without the
        time its tokens would otherwise keep. The configured key (``configured``)
        cannot be taken out of the configuration from here: its retirement is
        recorded as a row of its own, with no key material, which every worker
        reads on its next reload; it then neither signs nor verifies until
        :meth:`unretire` undoes it.

        :returns: what was done, or ``None`` if there is no such key or it is
            retired already.
        :raises ConfigurationError: the key signs, and no key can be stored to
            take over (``JWT_AUTH_KEY_ENCRYPTION_KEY`` is unset).
        """
        c = self.table.c
        session = self.db.session
        now = int(time.time())
        row = session.execute(
            sa.select(c.state, c.algorithm).where(c.kid == kid)
        ).first()
        if row is not None and row.state in (NEXT, RETIRING):
            self._mark_retired(kid, now)
            return Retirement(kid, replaced_by=None)
        if row is not None and row.state == CURRENT:
            replacement, _ = self._replace(row.algorithm, kid, now)
            self._mark_retired(kid, now)
            return Retirement(kid, replaced_by=replacement)
        if row is not None or configured is None or configured.kid != kid:
            return None
        successor: str | None = None
        stored_current = session.execute(
            sa.select(c.kid).where(
                c.state == CURRENT, c.algorithm == configured.algorithm
            )
        ).first()
        if stored_current is None:
            successor, _ = self._replace(configured.algorithm, kid, now)
        session.execute(
            sa.insert(self.table).values(
                kid=kid,
                algorithm=configured.algorithm,
                state=RETIRED,
                # The configured key's material stays in the configuration only.
                encrypted_key=CONFIGURED_MARKER,
                public_jwk=(
                    json.dumps(configured.public_jwk) if configured.public_jwk else None
                ),
                created_at=now,
                activated_at=None,
                retire_after=now,
            )
        )
        session.commit()
        return Retirement(kid, replaced_by=successor, configured=True)

    def unretire(self, kid: str) -> bool:
        """Undo the retirement of the configured key ``kid``: it verifies again,
        and signs again while no stored key is current.

        Stored keys cannot be brought back: generate a new one instead.

        :returns: whether a retirement of the configured key was undone.
        """
        c = self.table.c
        result = self.db.session.execute(
            sa.delete(self.table).where(
                c.kid == kid,
                c.state == RETIRED,
                c.encrypted_key == CONFIGURED_MARKER,
            )
        )
        self.db.session.commit()
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def _replace(self, algorithm: str, kid: str, now: int) -> tuple[str, str | None]:
        """A rotation for a key about to be retired: anything but ``kid`` signs."""
        if self.encryption is None:
            raise ConfigurationError(
                f"Key {kid} signs: retiring it needs another key to sign, and"
                " storing one needs JWT_AUTH_KEY_ENCRYPTION_KEY (a Fernet key). Set"
                " it, or replace the configured key and restart every worker."
            )
        c = self.table.c
        upcoming = self.db.session.execute(
            sa.select(c.kid)
            .where(c.state == NEXT, c.algorithm == algorithm, c.kid != kid)
            .order_by(c.created_at, c.kid)
            .limit(1)
        ).scalar()
        return self.rotate(algorithm, retire_after=now, kid=upcoming)

    def _mark_retired(self, kid: str, now: int) -> None:
        self.db.session.execute(
            sa.update(self.table)
            .where(self.table.c.kid == kid)
            .values(state=RETIRED, retire_after=now)
        )
        self.db.session.commit()

    def load(
        self, algorithm: str, now: float, configured_kid: str | None = None
    ) -> list[tuple[str, str, str]]:
        """``(kid, state, encrypted_key)`` of the keys that still verify, and a
        ``retired`` row for ``configured_kid`` if the configured key is retired."""
        c = self.table.c
        verifying = sa.and_(
            c.algorithm == algorithm,
            c.state.in_([NEXT, CURRENT, RETIRING]),
            sa.or_(c.retire_after.is_(None), c.retire_after > now),
        )
        if configured_kid is not None:
            verifying = sa.or_(
                verifying, sa.and_(c.kid == configured_kid, c.state == RETIRED)
            )
        statement = sa.select(c.kid, c.state, c.encrypted_key).where(verifying)
        rows = read_apart(self.db, statement)
        return [(row.kid, row.state, row.encrypted_key) for row in rows]
