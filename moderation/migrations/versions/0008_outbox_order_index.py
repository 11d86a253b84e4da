"""outbox order index: the dispatcher's in-order check reads (endpoint_id, comment_id, id)

An event waits while an earlier one for the same endpoint and comment is unfinished
(`moderation.webhooks._claim`). Without this index, each claim scanned an endpoint's
waiting rows for every candidate: slow exactly when a receiver is down and the backlog grows.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28
"""
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_webhook_outbox_order', 'webhook_outbox', ['endpoint_id', 'comment_id', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_webhook_outbox_order', table_name='webhook_outbox')
