"""audit log refuses TRUNCATE too (PostgreSQL); authors' emails are stored lower-cased

The audit log's row triggers (0001) refuse UPDATE and DELETE, but PostgreSQL's TRUNCATE
fires no row trigger: a statement trigger now refuses it as well. SQLite has no TRUNCATE.

Intake compares an author's email with their earlier comments (history, duplicates), so
"Bad@Example.org" and "bad@example.org" must be one author: new comments are stored
lower-cased (`moderation.validation.new_comment`, Python's str.lower), and this lower-cases the
ones already stored the same way (SQL lower() folds only ASCII in SQLite and C-locale PostgreSQL).

Trust now counts comments a person approved (published, not by the model's own "accept"):
comments imported as approved (`moderation.imports`) are stored as held and approved ("review"),
here too for those already imported.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    connection = op.get_bind()
    emails = connection.execute(sa.text("SELECT DISTINCT author_email FROM comments WHERE author_email IS NOT NULL")).scalars()
    for email in [e for e in emails if e != e.lower()]:
        connection.execute(sa.text("UPDATE comments SET author_email = :lower WHERE author_email = :email"), {"lower": email.lower(), "email": email})
    op.execute(
        "UPDATE comments SET decision = 'review' WHERE status = 'published' AND decision = 'accept' AND id IN "
        "(SELECT comment_id FROM audit_log WHERE action = 'approve' AND actor LIKE 'import:%')"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_log_no_truncate ON audit_log")
    # emails stay lower-cased: their original capitals are not kept anywhere
