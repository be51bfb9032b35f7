"""contextual incremental learning: per-run state (sufficient statistics, reservoir, posteriors) and
encoded batches of matured units

Revision ID: 0012
Revises: 0011
"""

from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('contextual_run_state',
    sa.Column('autotune_id', sa.String(length=200), nullable=False),
    sa.Column('incarnation_ms', sa.BigInteger(), nullable=False),
    sa.Column('run', sa.Integer(), nullable=False),
    sa.Column('as_of_ms', sa.BigInteger(), nullable=False),
    sa.Column('meta', sa.JSON(), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('autotune_id', 'incarnation_ms', 'run', name=op.f('pk_contextual_run_state'))
    )
    op.create_table('contextual_batches',
    sa.Column('autotune_id', sa.String(length=200), nullable=False),
    sa.Column('incarnation_ms', sa.BigInteger(), nullable=False),
    sa.Column('run', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('as_of_ms', sa.BigInteger(), nullable=False),
    sa.Column('units', sa.Integer(), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('autotune_id', 'incarnation_ms', 'run', 'seq', name=op.f('pk_contextual_batches'))
    )


def downgrade() -> None:
    op.drop_table('contextual_batches')
    op.drop_table('contextual_run_state')
