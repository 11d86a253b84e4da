"""ban history: bans and lifts leave an append-only trace in ban_events

Lifting a ban deletes its row, so nothing told later who banned or lifted whom. Every ban
and lift now also writes a ban_events row in the same transaction (`moderation.bans`).
Like the audit log (0001, 0006) the database refuses to UPDATE, DELETE or (PostgreSQL)
TRUNCATE it.

Being append-only, the history never holds a reader's address: it keeps the value masked
(an email's first letter and domain, an IP address's /24 or /48 network), so erasure and
retention still remove every address; the desk shows the full value while a ban in force
or the comment still holds it.

Events name their ban by id. SQLite reuses the highest rowid after a delete, so its bans
table is rebuilt with AUTOINCREMENT (ids kept); PostgreSQL's sequence never reuses one.
Each ban already in force gets its "ban" event from what its row records, with the comment
its reason names ("comment #N", as the desk wrote it) when that comment exists.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""
import ipaddress
import re

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

EMAIL = re.compile(r"([^\s@<>()\[\]\"',;:])[^\s@<>()\[\]\"',;:]{0,63}@")  # as moderation.logs.mask_emails cuts it


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table('bans', recreate='always', table_kwargs={'sqlite_autoincrement': True}):
            pass
    op.create_table('ban_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('ban_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('action', sa.String(length=10), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('masked', sa.String(length=320), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('comment_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['comment_id'], ['comments.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('ban_events', schema=None) as batch_op:
        batch_op.create_index('ix_ban_events_ban', ['ban_id'], unique=False)
        batch_op.create_index('ix_ban_events_comment', ['comment_id'], unique=False)
    _record_bans_in_force()
    _forbid_changes()


def _record_bans_in_force() -> None:
    connection = op.get_bind()
    found = connection.execute(sa.text("SELECT id, kind, value, created_by, reason, created_at FROM bans ORDER BY id")).mappings().all()
    named = {ban['id']: int(match.group(1)) for ban in found if (match := re.fullmatch(r"comment #([0-9]{1,18})", ban['reason'] or ""))}
    comments = sa.table('comments', sa.column('id'))
    wanted, existing = sorted(set(named.values())), set()
    for start in range(0, len(wanted), 500):  # SQLite takes a limited number of bound values per statement
        existing.update(connection.execute(sa.select(comments.c.id).where(comments.c.id.in_(wanted[start:start + 500]))).scalars())
    events = sa.table('ban_events', *(sa.column(name) for name in ('ban_id', 'action', 'kind', 'masked', 'actor', 'reason', 'comment_id', 'created_at')))
    rows = [{
        'ban_id': ban['id'], 'action': 'ban', 'kind': ban['kind'], 'masked': _masked(ban['kind'], ban['value']), 'actor': ban['created_by'],
        'reason': ban['reason'] and EMAIL.sub(r"\1***@", ban['reason']),
        'comment_id': named[ban['id']] if named.get(ban['id']) in existing else None, 'created_at': ban['created_at'],
    } for ban in found]
    if rows:
        connection.execute(events.insert(), rows)


def _masked(kind: str, value: str) -> str:
    """As `moderation.bans.masked` did when this was written."""
    if kind == 'ip':
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            return '***'
        return str(ipaddress.ip_network((int(address), 24 if address.version == 4 else 48), strict=False))
    local, at, domain = value.rpartition('@')
    return f"{local[:1]}***@{domain}" if at else f"{value[:1]}***"


def _forbid_changes() -> None:
    """The history is append-only: the database itself refuses UPDATE, DELETE and (PostgreSQL) TRUNCATE."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION ban_events_is_append_only() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION 'ban_events is append-only'; END; $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER ban_events_append_only BEFORE UPDATE OR DELETE ON ban_events "
            "FOR EACH ROW EXECUTE FUNCTION ban_events_is_append_only()"
        )
        op.execute(
            "CREATE TRIGGER ban_events_no_truncate BEFORE TRUNCATE ON ban_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION ban_events_is_append_only()"
        )
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER ban_events_no_{event.lower()} BEFORE {event} ON ban_events "
                "BEGIN SELECT RAISE(ABORT, 'ban_events is append-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER ban_events_no_truncate ON ban_events")
        op.execute("DROP TRIGGER ban_events_append_only ON ban_events")
        op.execute("DROP FUNCTION ban_events_is_append_only()")
    else:
        op.execute("DROP TRIGGER ban_events_no_update")
        op.execute("DROP TRIGGER ban_events_no_delete")
    with op.batch_alter_table('ban_events', schema=None) as batch_op:
        batch_op.drop_index('ix_ban_events_comment')
        batch_op.drop_index('ix_ban_events_ban')

    op.drop_table('ban_events')
    # bans keeps AUTOINCREMENT on SQLite: ids that are never reused harm nothing
