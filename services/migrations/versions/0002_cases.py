"""support cases: helpdesk API keys and the reseller's case settings

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 12:00:00
"""
from alembic import op
import sqlalchemy as sa
import services.models


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('helpdesk_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('created_at', services.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', services.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', services.models.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_helpdesk_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_helpdesk_keys_key_hash')),
    sa.UniqueConstraint('name', name=op.f('uq_helpdesk_keys_name'))
    )
    op.create_table('helpdesk_policies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('reopen_days', sa.Integer(), nullable=True),
    sa.Column('priority_definitions', sa.JSON(), nullable=True),
    sa.Column('updated_at', services.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_helpdesk_policies_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_helpdesk_policies')),
    sa.UniqueConstraint('customer_id', name=op.f('uq_helpdesk_policies_customer_id'))
    )


def downgrade() -> None:
    op.drop_table('helpdesk_policies')
    op.drop_table('helpdesk_keys')
