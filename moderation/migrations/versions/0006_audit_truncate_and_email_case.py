"""audit log refuses TRUNCATE too (PostgreSQL); authors' emails are stored lower-cased

The audit log's row triggers (0001) refuse UPDATE and DELETE, but PostgreSQL's TRUNCATE
fires no row trigger: a statement trigger now refuses it as well. SQLite has no TRUNCATE.

Intake compares an author's email with their earlier comments (history, duplicates), so
"Bad@Example.org" and "bad@example.org" must be one author: new comments are stored
lower-cased (`moderation.intake`), and this lower-cases the ones already stored.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE comments SET author_email = lower(author_email) WHERE author_email <> lower(author_email)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_log_no_truncate ON audit_log")
    # emails stay lower-cased: their original capitals are not kept anywhere
