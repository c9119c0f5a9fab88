"""Add the settings table (settings edited at run time).

Revision ID: a1f0c0de0002
Revises: a1f0c0de0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "a1f0c0de0002"
down_revision = "a1f0c0de0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jwt_auth_settings",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("jwt_auth_settings")
