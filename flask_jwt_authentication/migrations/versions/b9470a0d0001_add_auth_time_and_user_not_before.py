"""Add the sessions' auth_time and the per-user not-before table.

Revision ID: b9470a0d0001
Revises: a1f0c0de0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "b9470a0d0001"
down_revision = "a1f0c0de0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "jwt_auth_sessions", sa.Column("auth_time", sa.BigInteger(), nullable=True)
    )
    op.create_table(
        "jwt_auth_user_not_before",
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("not_before", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
    )


def downgrade() -> None:
    op.drop_table("jwt_auth_user_not_before")
    op.drop_column("jwt_auth_sessions", "auth_time")
