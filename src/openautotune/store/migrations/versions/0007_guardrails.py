"""guardrail aggregates: per (autotune, run, guardrail event, variant, period) sums the engine adds to

Revision ID: 0007
Revises: 0006
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('engine_guardrail_aggregates',
    sa.Column('autotune_id', sa.String(length=200), nullable=False),
    sa.Column('incarnation_ms', sa.BigInteger(), nullable=False),
    sa.Column('run', sa.Integer(), nullable=False),
    sa.Column('event', sa.String(length=256), nullable=False),
    sa.Column('value', sa.String(length=256), nullable=False),
    sa.Column('variant_id', sa.String(length=64), nullable=False),
    sa.Column('period', sa.Integer(), nullable=False),
    sa.Column('units', sa.BigInteger(), nullable=False),
    sa.Column('hits', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('autotune_id', 'incarnation_ms', 'run', 'event', 'value', 'variant_id', 'period', name=op.f('pk_engine_guardrail_aggregates'))
    )


def downgrade() -> None:
    op.drop_table('engine_guardrail_aggregates')
