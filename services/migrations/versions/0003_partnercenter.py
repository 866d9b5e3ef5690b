"""Partner Center and Graph: Graph SKU names on products, the provider's e-tag on subscriptions

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 12:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('products') as batch:
        batch.add_column(sa.Column('graph_sku_id', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('sku_part_number', sa.String(length=64), nullable=True))
    with op.batch_alter_table('subscriptions') as batch:
        batch.add_column(sa.Column('provider_etag', sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('subscriptions') as batch:
        batch.drop_column('provider_etag')
    with op.batch_alter_table('products') as batch:
        batch.drop_column('sku_part_number')
        batch.drop_column('graph_sku_id')
