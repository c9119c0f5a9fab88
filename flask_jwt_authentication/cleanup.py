"""``flask jwt cleanup``: expired sessions (with their refresh tokens) and
revoked ``jti`` rows, counted or deleted in batches, each in its own short
transaction, so that it can run from cron while traffic flows.

Sessions go once the family has expired, with every refresh token of it (consumed
ones included, so that reuse stays detectable for the family's whole life);
revoked ``jti`` rows once the token itself has expired. Both are selected in the
order of their indexed expiry, so each batch reads the index from its start
instead of sorting the whole backlog, and two cleanups at once take rows in the
same order.
"""

from __future__ import annotations

import time
import typing as t

import sqlalchemy as sa

if t.TYPE_CHECKING:
    from .store import Store

Counts = dict[str, int]


def _expired(
    store: Store, now: int
) -> tuple[sa.Select[t.Any], sa.Select[t.Any], sa.Select[t.Any]]:
    """The ids of the expired sessions, the expired revoked ``jti`` values, and
    the revocation log's rows that no live token needs any more."""
    sessions, revoked = store.tables.sessions, store.tables.revoked_tokens
    log = store.tables.revocations
    return (
        sa.select(sessions.c.id)
        .where(sessions.c.expires_at <= now)
        .order_by(sessions.c.expires_at),
        sa.select(revoked.c.jti)
        .where(revoked.c.expires_at <= now)
        .order_by(revoked.c.expires_at),
        sa.select(log.c.seq).where(log.c.expires_at <= now).order_by(log.c.expires_at),
    )


def count_expired(store: Store, *, now: int) -> Counts:
    """How many rows a cleanup would delete now, per kind; deletes nothing."""
    expired_sessions, expired_jtis, expired_log = _expired(store, now)
    rt = store.tables.refresh_tokens
    execute = store.db.session.execute
    counts = {
        "sessions": execute(
            sa.select(sa.func.count()).select_from(expired_sessions.subquery())
        ).scalar_one(),
        "refresh_tokens": execute(
            sa.select(sa.func.count())
            .select_from(rt)
            .where(rt.c.session_id.in_(expired_sessions))
        ).scalar_one(),
        "revoked_tokens": execute(
            sa.select(sa.func.count()).select_from(expired_jtis.subquery())
        ).scalar_one(),
        "revocation_log": execute(
            sa.select(sa.func.count()).select_from(expired_log.subquery())
        ).scalar_one(),
    }
    store.rollback()
    return counts


def _begin_batch(store: Store) -> None:
    """Start a batch's transaction in READ COMMITTED on MySQL/MariaDB.

    Under InnoDB's default REPEATABLE READ a ``DELETE`` locks every row it
    examines and the gaps between them (a scan when the optimiser picks one), so
    a batch blocked concurrent log-ins' and refreshes' inserts and deadlocked
    with them (a 503 for the client). READ COMMITTED locks only the rows it
    deletes. The level is reset when the connection returns to the pool.
    """
    session = store.db.session()
    mysql = store.db.engine.dialect.name in ("mysql", "mariadb")
    if mysql and not session.in_transaction():
        session.connection(execution_options={"isolation_level": "READ COMMITTED"})


def delete_expired(
    store: Store,
    *,
    now: int,
    batch_size: int,
    deadline: float,
    progress: t.Callable[[Counts], None] | None = None,
) -> Counts:
    """Delete expired rows, ``batch_size`` per transaction, until none is left
    or :func:`time.monotonic` passes ``deadline`` (no batch starts after it).

    :param progress: called after each batch with the counts so far.
    :returns: the number of rows deleted per kind.
    """
    sessions, rt = store.tables.sessions, store.tables.refresh_tokens
    revoked = store.tables.revoked_tokens
    log = store.tables.revocations
    expired_sessions, expired_jtis, expired_log = _expired(store, now)
    counts = {
        "sessions": 0,
        "refresh_tokens": 0,
        "revoked_tokens": 0,
        "revocation_log": 0,
    }
    execute = store.db.session.execute

    def sessions_batch(ids: list[t.Any]) -> None:
        deleted = execute(sa.delete(rt).where(rt.c.session_id.in_(ids)))
        counts["refresh_tokens"] += deleted.rowcount  # type: ignore[attr-defined]
        deleted = execute(
            sa.delete(sessions).where(
                sessions.c.id.in_(ids), sessions.c.expires_at <= now
            )
        )
        counts["sessions"] += deleted.rowcount  # type: ignore[attr-defined]

    def jtis_batch(jtis: list[t.Any]) -> None:
        deleted = execute(sa.delete(revoked).where(revoked.c.jti.in_(jtis)))
        counts["revoked_tokens"] += deleted.rowcount  # type: ignore[attr-defined]

    def log_batch(seqs: list[t.Any]) -> None:
        deleted = execute(sa.delete(log).where(log.c.seq.in_(seqs)))
        counts["revocation_log"] += deleted.rowcount  # type: ignore[attr-defined]

    for expired, delete in (
        (expired_sessions, sessions_batch),
        (expired_jtis, jtis_batch),
        (expired_log, log_batch),
    ):
        while time.monotonic() < deadline:
            _begin_batch(store)
            keys = list(execute(expired.limit(batch_size)).scalars())
            if not keys:
                break
            delete(keys)
            store.commit()
            if progress is not None:
                progress(dict(counts))
    return counts
