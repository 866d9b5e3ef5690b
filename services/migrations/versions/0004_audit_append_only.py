"""The audit trail refuses UPDATE and DELETE: append-only for every writer, not just for Seatdesk's code

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 08:00:00
"""
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

MESSAGE = 'audit_entries is append-only'


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f"""
            CREATE FUNCTION audit_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'restrict_violation';
            END $$
        """)
        op.execute("""
            CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries
            FOR EACH ROW EXECUTE FUNCTION audit_entries_append_only()
        """)
        op.execute("""
            CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries
            FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_append_only()
        """)
        return
    for event in ('UPDATE', 'DELETE'):
        op.execute(f"""
            CREATE TRIGGER audit_entries_no_{event.lower()} BEFORE {event} ON audit_entries
            BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END
        """)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP TRIGGER audit_entries_no_truncate ON audit_entries')
        op.execute('DROP TRIGGER audit_entries_append_only ON audit_entries')
        op.execute('DROP FUNCTION audit_entries_append_only()')
        return
    for event in ('update', 'delete'):
        op.execute(f'DROP TRIGGER audit_entries_no_{event}')
