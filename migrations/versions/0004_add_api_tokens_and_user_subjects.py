"""Add API tokens (name, role, SHA-256 of the secret) and the JWT subject of each user.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLES = ("reader", "editor", "worker", "admin")
ACTIVE = "revoked_at IS NULL"


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column(
            "role",
            sa.Enum(*ROLES, name="role", native_enum=False, create_constraint=True, length=16),
            nullable=False,
        ),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_api_tokens_secret_hash")),
    )
    # Unique among active tokens only: a revoked token's name may be given to its successor.
    op.create_index(
        "uq_api_tokens_name_active",
        "api_tokens",
        ["name"],
        unique=True,
        sqlite_where=sa.text(ACTIVE),
        postgresql_where=sa.text(ACTIVE),
    )

    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("subject", sa.String(255), nullable=True))
        batch.create_unique_constraint(op.f("uq_users_subject"), ["subject"])


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint(op.f("uq_users_subject"), type_="unique")
        batch.drop_column("subject")
    op.drop_index("uq_api_tokens_name_active", table_name="api_tokens")
    op.drop_table("api_tokens")
