"""ingest log: raw SDK batches appended before they are processed (docs/ingestion.md)

Revision ID: 0009
Revises: 0008
"""

from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ingest_batches',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('received_ms', sa.BigInteger(), nullable=False),
    sa.Column('encoding', sa.String(length=16), nullable=False),
    sa.Column('body', sa.LargeBinary(), nullable=True),
    sa.Column('event_count', sa.Integer(), nullable=False),
    sa.Column('processed_ms', sa.BigInteger(), nullable=True),
    sa.Column('accepted', sa.Integer(), nullable=True),
    sa.Column('ignored', sa.Integer(), nullable=True),
    sa.Column('rejected', sa.Integer(), nullable=True),
    sa.Column('problems', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ingest_batches'))
    )
    op.create_index('ix_ingest_batches_pending', 'ingest_batches', ['processed_ms', 'received_ms'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_ingest_batches_pending', table_name='ingest_batches')
    op.drop_table('ingest_batches')
