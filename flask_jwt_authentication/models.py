"""The extension's tables, defined on the application's own metadata.

They are SQLAlchemy Core tables on ``db.metadata``, so ``db.create_all()`` and
Flask-Migrate see them like the application's own models. Times are whole seconds
since the epoch (UTC), the same on every engine.
"""

from __future__ import annotations

import dataclasses
import typing as t

import sqlalchemy as sa
from sqlalchemy.pool import SingletonThreadPool
from sqlalchemy.pool import StaticPool

if t.TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

SESSIONS = "jwt_auth_sessions"
REFRESH_TOKENS = "jwt_auth_refresh_tokens"
REVOKED_TOKENS = "jwt_auth_revoked_tokens"
KEYS = "jwt_auth_keys"
SETTINGS = "jwt_auth_settings"
USER_NOT_BEFORE = "jwt_auth_user_not_before"
DPOP_PROOFS = "jwt_auth_dpop_proofs"
REVOCATIONS = "jwt_auth_revocations"


@dataclasses.dataclass(frozen=True)
class Tables:
    """The tables of the extension.

    :param sessions: login sessions (token families): one per log-in.
    :param refresh_tokens: refresh tokens, as SHA-256 hashes only.
    :param revoked_tokens: revoked access-token ``jti`` values until they expire.
    :param keys: signing keys, their private parts encrypted.
    :param settings: settings edited at run time (the admin), overriding the
        configuration.
    :param user_not_before: per user, the time before which no token of the user
        is accepted (set when the password changes).
    :param dpop_proofs: the DPoP proofs seen (RFC 9449 §11.1), until their
        window has passed: a proof is accepted once.
    :param revocations: the revocation log: every revocation in the order of a
        sequence number, until the last access token it covers has expired;
        workers in push mode and resource servers follow it.
    """

    sessions: sa.Table
    refresh_tokens: sa.Table
    revoked_tokens: sa.Table
    keys: sa.Table
    settings: sa.Table
    user_not_before: sa.Table
    dpop_proofs: sa.Table
    revocations: sa.Table


def build_tables(metadata: sa.MetaData) -> Tables:
    """Define the tables on ``metadata``, or return those already defined there.

    :param metadata: the application's metadata, normally ``db.metadata``.
    """
    if SESSIONS in metadata.tables:
        return Tables(
            metadata.tables[SESSIONS],
            metadata.tables[REFRESH_TOKENS],
            metadata.tables[REVOKED_TOKENS],
            metadata.tables[KEYS],
            metadata.tables[SETTINGS],
            metadata.tables[USER_NOT_BEFORE],
            metadata.tables[DPOP_PROOFS],
            metadata.tables[REVOCATIONS],
        )
    sessions = sa.Table(
        SESSIONS,
        metadata,
        sa.Column("id", sa.Uuid(), primary_key=True),
        # The identity, JSON-encoded so that 7 and "7" stay distinct.
        sa.Column("user_id", sa.String(255), nullable=False, index=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_used_at", sa.BigInteger(), nullable=False),
        # When the newest refresh token of the family expires.
        sa.Column("expires_at", sa.BigInteger(), nullable=False, index=True),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.Column("revoke_reason", sa.String(32), nullable=True),
        sa.Column("client_ip", sa.String(45), nullable=True),
        sa.Column("user_agent", sa.String(255), nullable=True),
        # When the user last gave a password in this session (RFC 9470 auth_time);
        # NULL for sessions started before the column existed: their created_at.
        sa.Column("auth_time", sa.BigInteger(), nullable=True),
        # DPoP (RFC 9449 §5): the thumbprint of the key the session's tokens are
        # bound to; NULL for Bearer sessions.
        sa.Column("dpop_jkt", sa.String(64), nullable=True),
    )
    refresh_tokens = sa.Table(
        REFRESH_TOKENS,
        metadata,
        # SHA-256 of the token, hex: the token itself is never stored.
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column(
            "session_id",
            sa.Uuid(),
            sa.ForeignKey(f"{SESSIONS}.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("issued_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False, index=True),
        sa.Column("consumed_at", sa.BigInteger(), nullable=True),
        # The token this one replaced: the grace window lets only the immediate
        # predecessor of a live token be presented again.
        sa.Column("parent_hash", sa.String(64), nullable=True, index=True),
        # When the grace window's one re-presentation of this consumed token was
        # used: any further presentation is reuse.
        sa.Column("grace_used_at", sa.BigInteger(), nullable=True),
    )
    revoked_tokens = sa.Table(
        REVOKED_TOKENS,
        metadata,
        sa.Column("jti", sa.String(255), primary_key=True),
        sa.Column("revoked_at", sa.BigInteger(), nullable=False),
        # The token's own exp: the row can go once the token would fail anyway.
        sa.Column("expires_at", sa.BigInteger(), nullable=False, index=True),
    )
    keys = sa.Table(
        KEYS,
        metadata,
        sa.Column("kid", sa.String(128), primary_key=True),
        sa.Column("algorithm", sa.String(16), nullable=False),
        # next, current, retiring or retired.
        sa.Column("state", sa.String(16), nullable=False, index=True),
        # Fernet token of the private key (PEM) or HMAC secret: never in plain text.
        sa.Column("encrypted_key", sa.Text(), nullable=False),
        sa.Column("public_jwk", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("activated_at", sa.BigInteger(), nullable=True),
        # A retiring key stops verifying after this time.
        sa.Column("retire_after", sa.BigInteger(), nullable=True),
    )
    settings = sa.Table(
        SETTINGS,
        metadata,
        # A JWT_AUTH_* name, such as JWT_AUTH_ACCESS_TOKEN_TTL.
        sa.Column("name", sa.String(64), primary_key=True),
        # The value, JSON-encoded.
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
    )
    user_not_before = sa.Table(
        USER_NOT_BEFORE,
        metadata,
        # The identity, JSON-encoded as in the sessions table.
        sa.Column("user_id", sa.String(255), primary_key=True),
        # Tokens of the user issued before this time are refused.
        sa.Column("not_before", sa.BigInteger(), nullable=False),
    )
    dpop_proofs = sa.Table(
        DPOP_PROOFS,
        metadata,
        # SHA-256 of the key's thumbprint and the proof's jti, hex.
        sa.Column("proof_hash", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.BigInteger(), nullable=False, index=True),
    )
    revocations = sa.Table(
        REVOCATIONS,
        metadata,
        # Ascending in commit order on SQLite; elsewhere a later sequence number
        # may commit first, which the followers allow for (.revocation).
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        # "session" (a sid), "token" (a jti) or "user" (an identity whose
        # tokens issued before ``at`` are refused).
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("value", sa.String(255), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        # When no token it covers can be live any more.
        sa.Column("expires_at", sa.BigInteger(), nullable=False, index=True),
    )
    return Tables(
        sessions,
        refresh_tokens,
        revoked_tokens,
        keys,
        settings,
        user_not_before,
        dpop_proofs,
        revocations,
    )


def read_apart(db: SQLAlchemy, statement: sa.Select[t.Any]) -> list[sa.Row[t.Any]]:
    """Run a periodic reload's query (the keys, the stored settings) on a
    connection of its own: a failed reload (a missing table, say) must not abort
    the request's transaction, which the revocation check uses. SQLite in
    memory has one shared connection only, so it uses that."""
    engine = db.engine
    if isinstance(engine.pool, (StaticPool, SingletonThreadPool)):
        return list(db.session.execute(statement).all())
    with engine.connect() as connection:
        return list(connection.execute(statement).all())
