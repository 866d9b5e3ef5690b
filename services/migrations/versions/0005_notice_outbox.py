"""The notice outbox: notices written with the change they report, delivered by the worker, so a crash between the commit and the send loses none

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 09:00:00
"""
from alembic import op
import sqlalchemy as sa
import services.models


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('notices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', services.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('claimed_until', services.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sent_at', services.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_notices_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notices_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notices'))
    )
    op.create_index(op.f('ix_notices_customer_id'), 'notices', ['customer_id'], unique=False)
    op.create_index('ix_notices_due', 'notices', ['status', 'claimed_until'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_notices_due', table_name='notices')
    op.drop_index(op.f('ix_notices_customer_id'), table_name='notices')
    op.drop_table('notices')
