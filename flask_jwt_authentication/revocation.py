"""The revocation log and the live revocations a worker keeps in memory.

Every revocation (a log-out, a session ended, a refresh token reused, a user's
password changed, an RFC 7009 revocation) is written twice in the same
transaction: where the database check of every protected request reads it (the
sessions, the revoked ``jti`` values, the users' not-before), and as a row of the
revocation log, ``jwt_auth_revocations``, numbered by a sequence.

With ``JWT_AUTH_REVOCATION_SYNC = "push"`` each worker keeps the log's live rows
in memory (:class:`RevocationCache`) and follows it (:mod:`.revocation_feed`), so
a protected request asks no database. A row stays live until the last access
token it covers has expired: a token's own expiry for a ``jti``; for a session or
a user, the revocation time plus the access-token lifetime and the leeway.

Sequence numbers, not timestamps, tell a follower what it has seen. On SQLite
they ascend in commit order. On PostgreSQL and MariaDB a transaction may take a
number and commit after a later one: a follower remembers the numbers it has not
seen below the highest one (the *gaps*) and asks for them again until they
appear or :data:`GAP_TIMEOUT` has passed (a rolled-back transaction leaves a gap
for ever). Applying a row twice changes nothing, and rows are only ever added,
so a late or repeated answer cannot bring back a stale state.
"""

from __future__ import annotations

import dataclasses
import json
import math
import threading
import time
import typing as t

import sqlalchemy as sa

if t.TYPE_CHECKING:
    from .store import Store

#: A login session (the ``sid`` claim) was ended.
SESSION = "session"
#: One access token (its ``jti``) was revoked.
TOKEN = "token"
#: A user's tokens issued before a time are refused (its password changed).
USER = "user"

#: How long a follower keeps asking for a sequence number it has not seen below
#: the highest one it has (a transaction still open, or one rolled back).
GAP_TIMEOUT = 60.0
#: The most unseen numbers a follower asks for again; older ones are given up.
MAX_GAPS = 1000
#: Seconds between two sweeps of expired entries out of memory.
PRUNE_INTERVAL = 10.0

SESSION_REVOKED = "The login session has been revoked."
TOKEN_REVOKED = "The token has been revoked."
CREDENTIALS_CHANGED = "The user's credentials changed after the token was issued."


@dataclasses.dataclass(frozen=True)
class Entry:
    """One row of the revocation log."""

    seq: int
    kind: str
    value: str
    #: When it was revoked; for :data:`USER`, the not-before time.
    at: int
    #: When no token it covers can be live any more.
    expires_at: int

    def to_list(self) -> list[t.Any]:
        """The entry as the revocation feed sends it."""
        return [self.seq, self.kind, self.value, self.at, self.expires_at]

    @classmethod
    def from_list(cls, item: t.Any) -> Entry:
        """An entry as the revocation feed sent it.

        :raises ValueError: it is not one.
        """
        if not isinstance(item, list) or len(item) != 5:
            raise ValueError("A revocation entry is a list of five members.")
        seq, kind, value, at, expires_at = item
        numbers = (seq, at, expires_at)
        if any(isinstance(n, bool) or not isinstance(n, int) for n in numbers):
            raise ValueError("A revocation entry's numbers must be integers.")
        if kind not in (SESSION, TOKEN, USER) or not isinstance(value, str):
            raise ValueError("A revocation entry has an unknown kind or value.")
        return cls(seq, kind, value, at, expires_at)


def user_key_of(uid: t.Any) -> str:
    """A token's ``uid`` claim as sessions store the identity (JSON)."""
    return json.dumps(uid)


# Writing the log, in the revoking request's transaction ---------------------------


def log(
    store: Store, kind: str, values: t.Iterable[str], *, at: int, until: int
) -> None:
    """Append revocations of one kind to the log, in the current transaction, and
    note them for the worker's own cache (applied when the transaction commits).

    :param values: the sids, ``jti`` values or user keys revoked.
    :param at: the revocation time (for :data:`USER`, the not-before time).
    :param until: when the last token they cover expires.
    """
    values = list(values)
    rows = [
        {"kind": kind, "value": value, "at": at, "expires_at": until}
        for value in values
    ]
    if not rows:
        return
    session = store.db.session
    session.execute(sa.insert(store.tables.revocations), rows)
    if session.get_bind().dialect.name == "postgresql":
        # Delivered to the listeners when the transaction commits.
        session.execute(sa.select(sa.func.pg_notify(NOTIFY_CHANNEL, "")))
    pending = session.info.setdefault(store.pending_key, [])
    pending.extend(Entry(0, kind, value, at, until) for value in values)


#: The PostgreSQL notification channel (and the Redis pub/sub channel).
NOTIFY_CHANNEL = "jwt_auth_revocations"


def read_after(
    connection: sa.Connection,
    table: sa.Table,
    after: int,
    gaps: t.Collection[int] = (),
    *,
    live_at: int | None = None,
) -> list[Entry]:
    """The log's rows after sequence number ``after``, and those of ``gaps``, in
    sequence order.

    :param live_at: only the rows still live at this time (a first load).
    """
    condition = table.c.seq > after
    if gaps:
        condition = sa.or_(condition, table.c.seq.in_(sorted(gaps)))
    statement = sa.select(
        table.c.seq, table.c.kind, table.c.value, table.c.at, table.c.expires_at
    ).where(condition)
    if live_at is not None:
        statement = statement.where(table.c.expires_at > live_at)
    rows = connection.execute(statement.order_by(table.c.seq))
    return [
        Entry(int(r.seq), r.kind, r.value, int(r.at), int(r.expires_at)) for r in rows
    ]


def last_seq(connection: sa.Connection, table: sa.Table) -> int:
    """The highest sequence number in the log (0 when it is empty)."""
    value = connection.execute(sa.select(sa.func.max(table.c.seq))).scalar()
    return int(value or 0)


# The worker's memory -----------------------------------------------------------------


class RevocationCache:
    """The live revocations of one worker, and how current it knows them to be.

    Reads take no lock (a dictionary lookup is atomic); writes do.

    :param max_delay: the longest the worker may go without confirming it is
        current (``JWT_AUTH_REVOCATION_MAX_DELAY``); past it :meth:`is_current`
        is false and the caller asks the database, or refuses.
    """

    def __init__(self, max_delay: float) -> None:
        self.max_delay = max_delay
        self._sessions: dict[str, int] = {}
        self._tokens: dict[str, int] = {}
        #: user key -> (not before, expires at)
        self._users: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()
        #: The highest sequence number seen.
        self.highest = 0
        #: Unseen numbers below ``highest`` -> when they were first missed.
        self._gaps: dict[int, float] = {}
        self._confirmed = -math.inf
        self._next_prune = 0.0
        #: Notified whenever entries arrive (a long-polling feed waits on it).
        self.arrived = threading.Condition()

    # Freshness -----------------------------------------------------------------------

    def is_current(self) -> bool:
        """Whether the worker confirmed it was current at most ``max_delay`` ago."""
        return time.monotonic() - self._confirmed <= self.max_delay

    def confirm(self, as_of: float) -> None:
        """Everything committed before ``as_of`` (:func:`time.monotonic`) is here."""
        if as_of > self._confirmed:
            self._confirmed = as_of

    def lapse(self) -> None:
        """Forget the last confirmation (the feed was lost)."""
        self._confirmed = -math.inf

    @property
    def confirmed_age(self) -> float:
        """Seconds since the last confirmation."""
        return time.monotonic() - self._confirmed

    # The check -----------------------------------------------------------------------

    def status(
        self, jti: str, session_id: str, uid: t.Any, issued_at: float | None
    ) -> str | None:
        """Why an access token is revoked, or ``None``: the database check's
        answers, from memory.

        :param uid: the token's ``uid`` claim.
        """
        now = time.time()
        until = self._sessions.get(session_id)
        if until is not None and until > now:
            return SESSION_REVOKED
        until = self._tokens.get(jti)
        if until is not None and until > now:
            return TOKEN_REVOKED
        if not self._users:
            return None
        user = self._users.get(user_key_of(uid))
        if (
            user is not None
            and user[1] > now
            and issued_at is not None
            and issued_at < user[0]
        ):
            return CREDENTIALS_CHANGED
        return None

    def __len__(self) -> int:
        return len(self._sessions) + len(self._tokens) + len(self._users)

    # Filling -------------------------------------------------------------------------

    @property
    def gaps(self) -> list[int]:
        """The unseen sequence numbers still asked for."""
        return list(self._gaps)

    def apply(self, entries: t.Iterable[Entry], *, from_log: bool = True) -> None:
        """Add entries; expired ones only count as seen.

        :param from_log: the entries carry sequence numbers (not the worker's own
            revocations, applied at commit before it reads them back).
        """
        now = time.time()
        clock = time.monotonic()
        added = False
        with self._lock:
            for entry in entries:
                if from_log:
                    self._see(entry.seq, clock)
                if entry.expires_at <= now:
                    continue
                added = True
                if entry.kind == SESSION:
                    self._keep(self._sessions, entry.value, entry.expires_at)
                elif entry.kind == TOKEN:
                    self._keep(self._tokens, entry.value, entry.expires_at)
                elif entry.kind == USER:
                    old = self._users.get(entry.value)
                    if old is None or old[0] <= entry.at:
                        until = max(entry.expires_at, old[1] if old else 0)
                        self._users[entry.value] = (entry.at, until)
            self._drop_old_gaps(clock)
            if clock >= self._next_prune:
                self._prune(now)
                self._next_prune = clock + PRUNE_INTERVAL
        if added:
            with self.arrived:
                self.arrived.notify_all()

    @staticmethod
    def _keep(table: dict[str, int], key: str, until: int) -> None:
        if table.get(key, 0) < until:
            table[key] = until

    def _see(self, seq: int, clock: float) -> None:
        if seq > self.highest:
            first_missing = self.highest + 1
            if seq - first_missing > MAX_GAPS:
                first_missing = seq - MAX_GAPS
            for missing in range(first_missing, seq):
                self._gaps[missing] = clock
            self.highest = seq
        else:
            self._gaps.pop(seq, None)

    def _drop_old_gaps(self, clock: float) -> None:
        stale = [
            seq for seq, since in self._gaps.items() if clock - since > GAP_TIMEOUT
        ]
        for seq in stale:
            del self._gaps[seq]
        if len(self._gaps) > MAX_GAPS:
            for seq in sorted(self._gaps)[: len(self._gaps) - MAX_GAPS]:
                del self._gaps[seq]

    def _prune(self, now: float) -> None:
        for table in (self._sessions, self._tokens):
            for key in [k for k, until in table.items() if until <= now]:
                del table[key]
        for key in [k for k, (_, until) in self._users.items() if until <= now]:
            del self._users[key]

    def prune(self) -> None:
        """Drop the entries whose tokens have all expired."""
        with self._lock:
            self._prune(time.time())

    def load(self, entries: list[Entry], highest: int) -> None:
        """A first load: the live rows, and the highest number in the log (the
        numbers just below it that are missing may still commit)."""
        with self._lock:
            clock = time.monotonic()
            seen = {entry.seq for entry in entries}
            for missing in range(
                max(self.highest + 1, highest - MAX_GAPS + 1), highest
            ):
                if missing not in seen:
                    self._gaps.setdefault(missing, clock)
            self.highest = max(self.highest, highest)
        self.apply(entries, from_log=False)


# Settings --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PushSettings:
    """How revocations reach the protected routes (``JWT_AUTH_REVOCATION_*``)."""

    #: ``"database"`` (every protected request asks it) or ``"push"``.
    sync: str = "database"
    max_delay: float = 1.0
    redis_url: str | None = None
    #: A resource server's feed: the issuer's revocation feed URL and the
    #: introspection client it authenticates as.
    feed_url: str | None = None
    feed_client_id: str | None = None
    feed_client_secret: str | None = None

    @property
    def push(self) -> bool:
        return self.sync == "push"


def load_push_settings(config: t.Mapping[str, t.Any]) -> PushSettings:
    """Read and check the ``JWT_AUTH_REVOCATION_*`` keys.

    :raises ConfigurationError: one is invalid, named with the fix.
    """
    from .settings_registry import read

    return PushSettings(
        sync=read(config, "JWT_AUTH_REVOCATION_SYNC"),
        max_delay=read(config, "JWT_AUTH_REVOCATION_MAX_DELAY"),
        redis_url=read(config, "JWT_AUTH_REVOCATION_REDIS_URL"),
        feed_url=read(config, "JWT_AUTH_REVOCATION_FEED_URL"),
        feed_client_id=read(config, "JWT_AUTH_REVOCATION_FEED_CLIENT_ID"),
        feed_client_secret=read(config, "JWT_AUTH_REVOCATION_FEED_CLIENT_SECRET"),
    )
