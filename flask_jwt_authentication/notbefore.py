"""Per-user "not before": after a password change, no token of the user issued
earlier is accepted (in the spirit of Keycloak's not-before policy).

The time is stored per user in its own table and read by the one statement every
protected request makes (``Store.revocation_status``).
"""

from __future__ import annotations

import typing as t

import sqlalchemy as sa

from . import revocation

if t.TYPE_CHECKING:
    from .store import Store


def set_not_before(store: Store, user_key: str, not_before: int) -> None:
    """Refuse the user's tokens issued before ``not_before``, in the request's
    transaction. A later time never moves back.

    :param user_key: the identity, JSON-encoded as stored with sessions.
    :param not_before: seconds since the epoch.
    """
    table = store.tables.user_not_before
    session = store.db.session
    revocation.log(
        store,
        revocation.USER,
        [user_key],
        at=not_before,
        until=store.horizon(not_before),
    )
    updated = session.execute(
        sa.update(table)
        .where(table.c.user_id == user_key, table.c.not_before < not_before)
        .values(not_before=not_before)
    )
    if updated.rowcount:  # type: ignore[attr-defined]
        return
    exists = session.execute(
        sa.select(table.c.not_before).where(table.c.user_id == user_key)
    ).first()
    if exists is None:
        session.execute(
            sa.insert(table).values(user_id=user_key, not_before=not_before)
        )


def not_before_of(store: Store, user_key: str) -> int | None:
    """The user's not-before time, or ``None`` if its password never changed."""
    table = store.tables.user_not_before
    value = store.db.session.execute(
        sa.select(table.c.not_before).where(table.c.user_id == user_key)
    ).scalar()
    return None if value is None else int(value)
