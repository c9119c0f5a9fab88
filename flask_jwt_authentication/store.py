"""The queries on the extension's tables: login sessions, refresh tokens, revocations.

Writes go through the application's ``db.session`` and are committed by the caller
in one transaction per request, so a failure leaves nothing half-written. The check
every protected request makes is one indexed Core statement on the request's
connection, without an ORM query.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import secrets
import time
import typing as t
import uuid

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from . import cleanup
from . import revocation
from .diagnostics import CREATE_TABLES_HINT
from .diagnostics import missing_table
from .errors import ServerMisconfigured
from .errors import TemporarilyUnavailable

if t.TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

    from .models import Tables

logger = logging.getLogger("flask_jwt_authentication")

#: Errors that mean the database cannot be reached or is overloaded right now.
_UNAVAILABLE = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    sa_exc.DisconnectionError,
)


#: Seconds between two deletions of DPoP proofs whose window has passed.
PROOF_SWEEP_INTERVAL = 5.0


def hash_refresh_token(token: str) -> str:
    """The stored form of a refresh token: SHA-256, hex.

    Refresh tokens carry 256 random bits, so an unsalted hash cannot be reversed.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_refresh_token() -> str:
    """A fresh opaque refresh token: 256 bits from :mod:`secrets`."""
    return secrets.token_urlsafe(32)


@dataclasses.dataclass(frozen=True)
class RefreshRecord:
    """What the store knows of a presented refresh token and its session."""

    token_hash: str
    session_id: uuid.UUID
    user_key: str
    expires_at: int
    consumed_at: int | None
    session_created_at: int
    session_revoked: bool
    #: When the session's user last gave a password (RFC 9470 ``auth_time``).
    auth_time: int | None = None
    #: The DPoP key thumbprint the session is bound to (RFC 9449 §5), if any.
    dpop_jkt: str | None = None

    @property
    def consumed(self) -> bool:
        """Whether the token was used already."""
        return self.consumed_at is not None


@dataclasses.dataclass(frozen=True)
class SessionInfo:
    """A login session as its owner or an administrator sees it.

    Times are seconds since the epoch.
    """

    id: str
    created_at: int
    last_used_at: int
    expires_at: int
    client_ip: str | None
    user_agent: str | None

    def to_dict(self) -> dict[str, t.Any]:
        """The JSON form, as the sessions endpoint returns it."""
        return dataclasses.asdict(self)


class Store:
    """The queries of one application's tables.

    :param db: the application's Flask-SQLAlchemy object.
    :param tables: the tables built on ``db.metadata``.
    """

    def __init__(
        self,
        db: SQLAlchemy,
        tables: Tables,
        horizon: t.Callable[[int], int] = lambda now: now + 900,
    ) -> None:
        self.db = db
        self.tables = tables
        #: When the last access token issued by ``now`` expires (revocation log
        #: rows for sessions and users are kept until then).
        self.horizon = horizon
        self._next_proof_sweep = 0.0
        #: Where the session notes the revocations of its open transaction.
        self.pending_key = f"jwt_auth_revocations:{id(self)}"
        sessions, revoked = tables.sessions, tables.revoked_tokens
        not_before = tables.user_not_before
        # One round trip for every revocation: the session row, the jti, and the
        # user's not-before (a password change).
        self._status = sa.select(
            sessions.c.revoked_at,
            sa.exists()
            .where(revoked.c.jti == sa.bindparam("jti"))
            .label("jti_revoked"),
            sa.select(not_before.c.not_before)
            .where(not_before.c.user_id == sessions.c.user_id)
            .scalar_subquery()
            .label("not_before"),
        ).where(sessions.c.id == sa.bindparam("sid"))

    @contextlib.contextmanager
    def unavailable_on_error(self) -> t.Iterator[None]:
        """Turn a database outage into 503 ``temporarily_unavailable``, and a
        missing table into 500 ``server_error`` with a log line saying how to
        create the tables.

        The transaction is rolled back first, so nothing is half-written. The log
        names the error class and the driver's message, never statement parameters.
        """
        try:
            yield
        except (*_UNAVAILABLE, sa_exc.ProgrammingError) as e:
            table = missing_table(e)
            if table is None and not isinstance(e, _UNAVAILABLE):
                raise
            self.rollback()
            if table is not None:
                # Not an outage: retrying will not help, the developer must act.
                logger.error("The table %s is missing: %s.", table, CREATE_TABLES_HINT)
                raise ServerMisconfigured() from e
            logger.error(
                "Database unavailable (%s): %s", type(e).__name__, getattr(e, "orig", e)
            )
            raise TemporarilyUnavailable() from e

    def rollback(self) -> None:
        """Roll back the request's transaction, ignoring a dead connection."""
        try:
            self.db.session.rollback()
        except _UNAVAILABLE:
            logger.debug("Rollback failed on an unavailable database.", exc_info=True)

    def commit(self) -> None:
        """Commit the request's transaction."""
        self.db.session.commit()

    # The hot path -----------------------------------------------------------------

    def revocation_status(
        self, jti: str, session_id: str, issued_at: float | None = None
    ) -> str | None:
        """Why an access token is revoked, or ``None`` if it is not.

        :param jti: the token's ``jti``.
        :param session_id: the token's ``sid``.
        :param issued_at: the token's ``iat``: refused if before the user's
            not-before (its password changed since).
        """
        params = {"jti": jti, "sid": uuid.UUID(session_id)}
        # The request's own connection, the one the user loader uses next: one
        # pool checkout per request, and a Core statement, not an ORM query.
        row = self.db.session.connection().execute(self._status, params).first()
        if row is None:
            return "The login session is unknown or has ended."
        if row.revoked_at is not None:
            return "The login session has been revoked."
        if row.jti_revoked:
            return "The token has been revoked."
        if (
            issued_at is not None
            and row.not_before is not None
            and issued_at < row.not_before
        ):
            return "The user's credentials changed after the token was issued."
        return None

    # Writes, in the request's transaction ------------------------------------------

    def start_session(
        self,
        user_key: str,
        *,
        now: int,
        expires_at: int,
        client_ip: str | None,
        user_agent: str | None,
        dpop_jkt: str | None = None,
    ) -> tuple[uuid.UUID, str]:
        """Insert a login session and its first refresh token.

        :param expires_at: when the first refresh token expires.
        :returns: the session id and the refresh token (the only time it exists in
            plain text).
        """
        session_id = self.insert_session(
            user_key,
            now=now,
            expires_at=expires_at,
            client_ip=client_ip,
            user_agent=user_agent,
            auth_time=now,
            dpop_jkt=dpop_jkt,
        )
        return session_id, self._insert_refresh_token(session_id, now, expires_at)

    def insert_session(
        self,
        user_key: str,
        *,
        now: int,
        expires_at: int,
        client_ip: str | None,
        user_agent: str | None,
        auth_time: int | None = None,
        dpop_jkt: str | None = None,
    ) -> uuid.UUID:
        """Insert a login session without a refresh token (the admin's sign-in
        keeps its session in a cookie instead).

        :param expires_at: when the session ends.
        :param auth_time: when the user gave the password (default: ``now``).
        :returns: the session id.
        """
        session_id = uuid.uuid4()
        self.db.session.execute(
            sa.insert(self.tables.sessions).values(
                id=session_id,
                user_id=user_key,
                created_at=now,
                last_used_at=now,
                expires_at=expires_at,
                client_ip=(client_ip or None) and client_ip[:45],
                user_agent=(user_agent or None) and user_agent[:255],
                auth_time=now if auth_time is None else auth_time,
                dpop_jkt=dpop_jkt,
            )
        )
        return session_id

    def _insert_refresh_token(
        self,
        session_id: uuid.UUID,
        now: int,
        expires_at: int,
        parent_hash: str | None = None,
    ) -> str:
        token = new_refresh_token()
        self.db.session.execute(
            sa.insert(self.tables.refresh_tokens).values(
                token_hash=hash_refresh_token(token),
                session_id=session_id,
                issued_at=now,
                expires_at=expires_at,
                parent_hash=parent_hash,
            )
        )
        return token

    def find_refresh_token(self, token: str) -> RefreshRecord | None:
        """Look up a presented refresh token with its session."""
        rt, sessions = self.tables.refresh_tokens, self.tables.sessions
        token_hash = hash_refresh_token(token)
        row = self.db.session.execute(
            sa.select(
                rt.c.session_id,
                rt.c.expires_at,
                rt.c.consumed_at,
                sessions.c.user_id,
                sessions.c.created_at,
                sessions.c.revoked_at,
                sessions.c.auth_time,
                sessions.c.dpop_jkt,
            )
            .join(sessions, sessions.c.id == rt.c.session_id)
            .where(rt.c.token_hash == token_hash)
        ).first()
        if row is None:
            return None
        return RefreshRecord(
            token_hash=token_hash,
            session_id=row.session_id,
            user_key=row.user_id,
            expires_at=row.expires_at,
            consumed_at=row.consumed_at,
            session_created_at=row.created_at,
            session_revoked=row.revoked_at is not None,
            auth_time=row.auth_time,
            dpop_jkt=row.dpop_jkt,
        )

    def rotate(self, record: RefreshRecord, *, now: int, expires_at: int) -> str | None:
        """Consume ``record`` and issue the next refresh token of its session.

        The consumption is a conditional update checked by its row count, so of two
        concurrent rotations of one token exactly one succeeds on every engine.

        :param expires_at: when the new refresh token expires.
        :returns: the new refresh token, or ``None`` if the token was consumed
            meanwhile (the caller treats that as reuse).
        """
        rt = self.tables.refresh_tokens
        result = self.db.session.execute(
            sa.update(rt)
            .where(rt.c.token_hash == record.token_hash, rt.c.consumed_at.is_(None))
            .values(consumed_at=now)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return None
        # The session row is locked before the new token's foreign key refers to
        # it, so a concurrent revocation waits instead of deadlocking (InnoDB).
        self._touch_session(record.session_id, now, expires_at)
        return self._insert_refresh_token(
            record.session_id, now, expires_at, parent_hash=record.token_hash
        )

    def _touch_session(self, session_id: uuid.UUID, now: int, expires_at: int) -> None:
        sessions = self.tables.sessions
        # The session lives as long as its longest-lived refresh token.
        self.db.session.execute(
            sa.update(sessions)
            .where(sessions.c.id == session_id)
            .values(
                last_used_at=now,
                expires_at=sa.func.greatest(sessions.c.expires_at, expires_at)
                if self.db.engine.dialect.name != "sqlite"
                else sa.func.max(sessions.c.expires_at, expires_at),
            )
        )

    def successor_is_live(self, record: RefreshRecord) -> bool:
        """Whether a token that replaced ``record`` is still unused: then ``record``
        is the immediate predecessor of the session's current token."""
        rt = self.tables.refresh_tokens
        row = self.db.session.execute(
            sa.select(rt.c.token_hash)
            .where(rt.c.parent_hash == record.token_hash, rt.c.consumed_at.is_(None))
            .limit(1)
        ).first()
        return row is not None

    def claim_grace(self, record: RefreshRecord, *, now: int) -> bool:
        """Use the grace window's one re-presentation of the consumed ``record``.

        A conditional update checked by its row count: of concurrent claims
        exactly one succeeds, on every engine.

        :returns: whether this request may branch; ``False``: it was used already.
        """
        rt = self.tables.refresh_tokens
        result = self.db.session.execute(
            sa.update(rt)
            .where(
                rt.c.token_hash == record.token_hash,
                rt.c.consumed_at.is_not(None),
                rt.c.grace_used_at.is_(None),
            )
            .values(grace_used_at=now)
        )
        return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]

    def branch(self, record: RefreshRecord, *, now: int, expires_at: int) -> str:
        """Issue another successor of the consumed ``record`` (the grace window's
        one re-presentation, see :meth:`claim_grace`), leaving its first
        successor valid too."""
        self._touch_session(record.session_id, now, expires_at)
        return self._insert_refresh_token(
            record.session_id, now, expires_at, parent_hash=record.token_hash
        )

    def revoke_session(
        self,
        session_id: uuid.UUID,
        *,
        now: int,
        reason: str,
        user_key: str | None = None,
        only_unexpired: bool = False,
    ) -> bool:
        """Revoke a login session: its refresh and access tokens stop working.

        :param user_key: revoke it only if it belongs to this user.
        :param only_unexpired: leave a session alone that has expired already.
        :returns: whether a session was revoked.
        """
        sessions = self.tables.sessions
        statement = (
            sa.update(sessions)
            .where(sessions.c.id == session_id, sessions.c.revoked_at.is_(None))
            .values(revoked_at=now, revoke_reason=reason)
        )
        if user_key is not None:
            statement = statement.where(sessions.c.user_id == user_key)
        if only_unexpired:
            statement = statement.where(sessions.c.expires_at > now)
        result = self.db.session.execute(statement)
        done = bool(result.rowcount)  # type: ignore[attr-defined]
        if done:
            revocation.log(
                self,
                revocation.SESSION,
                [str(session_id)],
                at=now,
                until=self.horizon(now),
            )
        return done

    def revoke_user_sessions(self, user_key: str, *, now: int, reason: str) -> int:
        """Revoke every live session of a user ("log out everywhere").

        :returns: how many sessions were revoked.
        """
        sessions = self.tables.sessions
        live = sessions.c.user_id == user_key, sessions.c.revoked_at.is_(None)
        ids = list(
            self.db.session.execute(sa.select(sessions.c.id).where(*live)).scalars()
        )
        if not ids:
            return 0
        # The sessions found, not "the user's": the log names each one, and a
        # session started meanwhile is not ended unlogged.
        result = self.db.session.execute(
            sa.update(sessions)
            .where(sessions.c.id.in_(ids), sessions.c.revoked_at.is_(None))
            .values(revoked_at=now, revoke_reason=reason)
        )
        revocation.log(
            self,
            revocation.SESSION,
            [str(session_id) for session_id in ids],
            at=now,
            until=self.horizon(now),
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    def user_sessions(self, user_key: str, *, now: int) -> list[SessionInfo]:
        """The live sessions of a user, most recently used first."""
        s = self.tables.sessions
        rows = self.db.session.execute(
            sa.select(
                s.c.id,
                s.c.created_at,
                s.c.last_used_at,
                s.c.expires_at,
                s.c.client_ip,
                s.c.user_agent,
            )
            .where(
                s.c.user_id == user_key,
                s.c.revoked_at.is_(None),
                s.c.expires_at > now,
            )
            .order_by(s.c.last_used_at.desc(), s.c.created_at.desc())
        )
        return [
            SessionInfo(
                id=str(row.id),
                created_at=row.created_at,
                last_used_at=row.last_used_at,
                expires_at=row.expires_at,
                client_ip=row.client_ip,
                user_agent=row.user_agent,
            )
            for row in rows
        ]

    def revoke_access_token(self, jti: str, *, expires_at: int, now: int) -> None:
        """Record a revoked ``jti`` until the token's own expiry."""
        self.db.session.execute(
            sa.insert(self.tables.revoked_tokens).values(
                jti=jti, revoked_at=now, expires_at=expires_at
            )
        )
        revocation.log(self, revocation.TOKEN, [jti], at=now, until=expires_at)

    # Administration ---------------------------------------------------------------

    def live_session_owner(self, session_id: uuid.UUID, *, now: int) -> str | None:
        """The stored identity of a session that is neither revoked nor expired,
        or ``None``."""
        s = self.tables.sessions
        return self.db.session.execute(
            sa.select(s.c.user_id).where(
                s.c.id == session_id,
                s.c.revoked_at.is_(None),
                s.c.expires_at > now,
            )
        ).scalar()

    def use_proof(self, jkt: str, jti: str, *, expires_at: int, now: int) -> bool:
        """Record a DPoP proof as seen (RFC 9449 §11.1), in its own transaction,
        and forget proofs whose window has passed.

        :returns: ``False`` if it was seen before (a replay).
        """
        table = self.tables.dpop_proofs
        digest = hashlib.sha256(f"{jkt}:{jti}".encode()).hexdigest()
        session = self.db.session
        sweep = time.monotonic() >= self._next_proof_sweep
        try:
            session.execute(
                sa.insert(table).values(proof_hash=digest, expires_at=expires_at)
            )
            if sweep:
                # Past proofs go every few seconds, in the same commit.
                session.execute(sa.delete(table).where(table.c.expires_at < now))
            session.commit()
        except sa.exc.IntegrityError:
            session.rollback()
            return False
        if sweep:
            self._next_proof_sweep = time.monotonic() + PROOF_SWEEP_INTERVAL
        return True

    # Maintenance ------------------------------------------------------------------

    def cleanup(
        self,
        *,
        now: int,
        batch_size: int,
        deadline: float,
        dry_run: bool = False,
        progress: t.Callable[[dict[str, int]], None] | None = None,
    ) -> dict[str, int]:
        """Delete expired rows in batches (see :mod:`.cleanup`); with ``dry_run``
        count them and delete nothing.

        :returns: the number of rows deleted (or deletable) per kind.
        """
        if dry_run:
            return cleanup.count_expired(self, now=now)
        return cleanup.delete_expired(
            self, now=now, batch_size=batch_size, deadline=deadline, progress=progress
        )
