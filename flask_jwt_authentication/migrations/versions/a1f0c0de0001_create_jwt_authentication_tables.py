"""Create the jwt_authentication tables.

Revision ID: a1f0c0de0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "a1f0c0de0001"
down_revision = None
branch_labels = ("jwt_authentication",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jwt_auth_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_used_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.Column("revoke_reason", sa.String(32), nullable=True),
        sa.Column("client_ip", sa.String(45), nullable=True),
        sa.Column("user_agent", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_jwt_auth_sessions_user_id", "jwt_auth_sessions", ["user_id"])
    op.create_index(
        "ix_jwt_auth_sessions_expires_at", "jwt_auth_sessions", ["expires_at"]
    )
    op.create_table(
        "jwt_auth_refresh_tokens",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("issued_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("consumed_at", sa.BigInteger(), nullable=True),
        sa.Column("parent_hash", sa.String(64), nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"], ["jwt_auth_sessions.id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index(
        "ix_jwt_auth_refresh_tokens_session_id",
        "jwt_auth_refresh_tokens",
        ["session_id"],
    )
    op.create_index(
        "ix_jwt_auth_refresh_tokens_expires_at",
        "jwt_auth_refresh_tokens",
        ["expires_at"],
    )
    op.create_index(
        "ix_jwt_auth_refresh_tokens_parent_hash",
        "jwt_auth_refresh_tokens",
        ["parent_hash"],
    )
    op.create_table(
        "jwt_auth_revoked_tokens",
        sa.Column("jti", sa.String(255), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("jti"),
    )
    op.create_index(
        "ix_jwt_auth_revoked_tokens_expires_at",
        "jwt_auth_revoked_tokens",
        ["expires_at"],
    )
    op.create_table(
        "jwt_auth_keys",
        sa.Column("kid", sa.String(128), nullable=False),
        sa.Column("algorithm", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("encrypted_key", sa.Text(), nullable=False),
        sa.Column("public_jwk", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("activated_at", sa.BigInteger(), nullable=True),
        sa.Column("retire_after", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("kid"),
    )
    op.create_index("ix_jwt_auth_keys_state", "jwt_auth_keys", ["state"])


def downgrade() -> None:
    op.drop_table("jwt_auth_keys")
    op.drop_table("jwt_auth_revoked_tokens")
    op.drop_table("jwt_auth_refresh_tokens")
    op.drop_table("jwt_auth_sessions")
