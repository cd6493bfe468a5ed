"""The first schema: unanswered questions, feedback, staff accounts, sessions and the audit log.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "question_group",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("first_seen", sa.String(32), nullable=False),
        sa.Column("last_seen", sa.String(32), nullable=False),
        sa.Column("vector", sa.LargeBinary),
        if_not_exists=True,
    )
    op.create_index("ix_question_group_last_seen", "question_group", ["last_seen"], if_not_exists=True)
    op.create_table(
        "question_variant",
        sa.Column("norm", sa.Text, primary_key=True),
        sa.Column("group_id", sa.Integer, sa.ForeignKey("question_group.id", ondelete="CASCADE"), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        if_not_exists=True,
    )
    op.create_index("ix_question_variant_group_id", "question_variant", ["group_id"], if_not_exists=True)
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("created", sa.String(32), nullable=False),
        sa.Column("helpful", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("index_version", sa.String(100), nullable=False),
        sa.Column("passage_ids", sa.Text, nullable=False),
        sa.Column("handled", sa.String(32)),
        if_not_exists=True,
    )
    op.create_index("feedback_queue", "feedback", ["helpful", "handled", "created"], if_not_exists=True)
    op.create_table(
        "staff",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("hash", sa.Text, nullable=False),
        sa.Column("created", sa.String(32), nullable=False),
        if_not_exists=True,
    )
    op.create_table(
        "staff_session",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(64), sa.ForeignKey("staff.name", ondelete="CASCADE"), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created", sa.String(32), nullable=False),
        sa.Column("expires", sa.String(32), nullable=False),
        if_not_exists=True,
    )
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        if_not_exists=True,
    )


def downgrade() -> None:
    for table in ("audit", "staff_session", "staff", "feedback", "question_variant", "question_group"):
        op.drop_table(table)
