"""The lists the admin pages show: login sessions (by user, most recently used
first) and revoked access-token ids, a page at a time. Never a token or a
token's hash."""

from __future__ import annotations

import dataclasses
import typing as t

import sqlalchemy as sa

if t.TYPE_CHECKING:
    from .store import Store


@dataclasses.dataclass(frozen=True)
class SessionRecord:
    """A login session as the administration lists it: who, when, from where,
    and whether it was revoked; never a token or a token's hash.

    Times are seconds since the epoch.
    """

    id: str
    #: The user's identity, JSON-encoded as stored.
    user_key: str
    created_at: int
    last_used_at: int
    expires_at: int
    revoked_at: int | None
    revoke_reason: str | None
    client_ip: str | None
    user_agent: str | None


@dataclasses.dataclass(frozen=True)
class RevokedTokenRecord:
    """A revoked access token's ``jti``, kept until the token expires."""

    jti: str
    revoked_at: int
    expires_at: int


def _unexpired_sessions(
    store: Store, user_keys: t.Sequence[str] | None, now: int
) -> sa.ColumnElement[bool]:
    s = store.tables.sessions
    condition = s.c.expires_at > now
    if user_keys is not None:
        condition = sa.and_(condition, s.c.user_id.in_(list(user_keys)))
    return condition


def session_records(
    store: Store,
    *,
    user_keys: t.Sequence[str] | None,
    now: int,
    limit: int,
    offset: int = 0,
) -> list[SessionRecord]:
    """Unexpired sessions, revoked ones included, most recently used first.

    :param user_keys: only the sessions of these stored identities; ``None``:
        every user's.
    """
    s = store.tables.sessions
    rows = store.db.session.execute(
        sa.select(
            s.c.id,
            s.c.user_id.label("user_key"),
            s.c.created_at,
            s.c.last_used_at,
            s.c.expires_at,
            s.c.revoked_at,
            s.c.revoke_reason,
            s.c.client_ip,
            s.c.user_agent,
        )
        .where(_unexpired_sessions(store, user_keys, now))
        .order_by(s.c.last_used_at.desc(), s.c.created_at.desc(), s.c.id)
        .limit(limit)
        .offset(offset)
    )
    return [SessionRecord(**{**row._mapping, "id": str(row.id)}) for row in rows]


def count_session_records(
    store: Store, *, user_keys: t.Sequence[str] | None, now: int
) -> int:
    """How many sessions :func:`session_records` would list in all."""
    statement = (
        sa.select(sa.func.count())
        .select_from(store.tables.sessions)
        .where(_unexpired_sessions(store, user_keys, now))
    )
    return int(store.db.session.execute(statement).scalar_one())


def revoked_token_records(
    store: Store, *, limit: int, offset: int = 0
) -> list[RevokedTokenRecord]:
    """Revoked access-token ids, most recently revoked first."""
    r = store.tables.revoked_tokens
    rows = store.db.session.execute(
        sa.select(r.c.jti, r.c.revoked_at, r.c.expires_at)
        .order_by(r.c.revoked_at.desc(), r.c.jti)
        .limit(limit)
        .offset(offset)
    )
    return [RevokedTokenRecord(**row._mapping) for row in rows]


def count_revoked_tokens(store: Store) -> int:
    """How many revoked access-token ids are stored."""
    statement = sa.select(sa.func.count()).select_from(store.tables.revoked_tokens)
    return int(store.db.session.execute(statement).scalar_one())
