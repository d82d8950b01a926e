"""Add the persisted-query store: GraphQL documents by SHA-256, shared by all processes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "persisted_queries",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        _timestamp("created_at"),
        _timestamp("last_used_at"),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_persisted_queries")),
    )
    op.create_index(
        op.f("ix_persisted_queries_last_used_at_sha256"),
        "persisted_queries",
        ["last_used_at", "sha256"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_persisted_queries_last_used_at_sha256"), table_name="persisted_queries")
    op.drop_table("persisted_queries")
