"""metric sources: named SQL sources of success data, their connection URLs sealed (docs/metric-sources.md)

Revision ID: 0011
Revises: 0010
"""

from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('metric_sources',
    sa.Column('id', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('url_sealed', sa.Text(), nullable=False),
    sa.Column('url_masked', sa.Text(), nullable=False),
    sa.Column('query', sa.Text(), nullable=True),
    sa.Column('table_name', sa.String(length=200), nullable=True),
    sa.Column('unit_id_column', sa.String(length=63), nullable=False),
    sa.Column('timestamp_column', sa.String(length=63), nullable=False),
    sa.Column('value_column', sa.String(length=63), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.Column('creator_id', sa.String(length=64), nullable=False),
    sa.Column('creator_name', sa.String(length=100), nullable=False),
    sa.Column('last_read_ms', sa.BigInteger(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_error_ms', sa.BigInteger(), nullable=True),
    sa.Column('last_error_autotune_id', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_metric_sources'))
    )


def downgrade() -> None:
    op.drop_table('metric_sources')
