"""engine: cumulative aggregates, update records, update locks

Revision ID: 0003
Revises: 0002
"""

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('engine_aggregates',
    sa.Column('autotune_id', sa.String(length=200), nullable=False),
    sa.Column('incarnation_ms', sa.BigInteger(), nullable=False),
    sa.Column('run', sa.Integer(), nullable=False),
    sa.Column('variant_id', sa.String(length=64), nullable=False),
    sa.Column('period', sa.Integer(), nullable=False),
    sa.Column('units', sa.BigInteger(), nullable=False),
    sa.Column('successes', sa.BigInteger(), nullable=False),
    sa.Column('total', sa.Float(), nullable=False),
    sa.Column('total_sq', sa.Float(), nullable=False),
    sa.Column('rejected', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('autotune_id', 'incarnation_ms', 'run', 'variant_id', 'period', name=op.f('pk_engine_aggregates'))
    )
    op.create_table('engine_updates',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('autotune_id', sa.String(length=200), nullable=False),
    sa.Column('incarnation_ms', sa.BigInteger(), nullable=False),
    sa.Column('run', sa.Integer(), nullable=False),
    sa.Column('as_of_ms', sa.BigInteger(), nullable=False),
    sa.Column('computed_ms', sa.BigInteger(), nullable=False),
    sa.Column('stage', sa.String(length=16), nullable=False),
    sa.Column('decision', sa.String(length=32), nullable=True),
    sa.Column('allocation_version', sa.Integer(), nullable=True),
    sa.Column('record', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_engine_updates'))
    )
    with op.batch_alter_table('engine_updates', schema=None) as batch_op:
        batch_op.create_index('ix_engine_updates_autotune_as_of', ['autotune_id', 'as_of_ms'], unique=False)

    op.create_table('engine_locks',
    sa.Column('autotune_id', sa.String(length=200), nullable=False),
    sa.Column('owner', sa.String(length=128), nullable=False),
    sa.Column('expires_ms', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('autotune_id', name=op.f('pk_engine_locks'))
    )


def downgrade() -> None:
    op.drop_table('engine_locks')
    with op.batch_alter_table('engine_updates', schema=None) as batch_op:
        batch_op.drop_index('ix_engine_updates_autotune_as_of')

    op.drop_table('engine_updates')
    op.drop_table('engine_aggregates')
