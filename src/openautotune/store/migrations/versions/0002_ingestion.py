"""ingestion: exposures, units, events

Revision ID: 0002
Revises: 0001
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('id_type', sa.String(length=64), nullable=False),
    sa.Column('unit_id', sa.String(length=256), nullable=False),
    sa.Column('event_name', sa.String(length=256), nullable=False),
    sa.Column('value', sa.Text(), nullable=True),
    sa.Column('metadata', sa.JSON(), nullable=True),
    sa.Column('time_ms', sa.BigInteger(), nullable=False),
    sa.Column('received_ms', sa.BigInteger(), nullable=False),
    sa.Column('dedup_key', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events')),
    sa.UniqueConstraint('dedup_key', name=op.f('uq_events_dedup_key'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_attribution', ['event_name', 'id_type', 'unit_id', 'time_ms'], unique=False)

    op.create_table('exposures',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('autotune_id', sa.String(length=200), nullable=False),
    sa.Column('run', sa.Integer(), nullable=True),
    sa.Column('unit_id', sa.String(length=256), nullable=False),
    sa.Column('rule_id', sa.String(length=128), nullable=False),
    sa.Column('variant_id', sa.String(length=64), nullable=True),
    sa.Column('explore', sa.Boolean(), nullable=False),
    sa.Column('config_version', sa.Integer(), nullable=True),
    sa.Column('time_ms', sa.BigInteger(), nullable=False),
    sa.Column('received_ms', sa.BigInteger(), nullable=False),
    sa.Column('user', sa.JSON(), nullable=True),
    sa.Column('propensity', sa.Float(), nullable=True),
    sa.Column('analysable', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=False),
    sa.Column('dedup_key', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exposures')),
    sa.UniqueConstraint('dedup_key', name=op.f('uq_exposures_dedup_key'))
    )
    with op.batch_alter_table('exposures', schema=None) as batch_op:
        batch_op.create_index('ix_exposures_autotune_time', ['autotune_id', 'time_ms'], unique=False)

    op.create_table('units',
    sa.Column('autotune_id', sa.String(length=200), nullable=False),
    sa.Column('run', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.String(length=256), nullable=False),
    sa.Column('variant_id', sa.String(length=64), nullable=False),
    sa.Column('first_exposure_ms', sa.BigInteger(), nullable=False),
    sa.Column('allocation_version', sa.Integer(), nullable=True),
    sa.Column('explore', sa.Boolean(), nullable=False),
    sa.Column('features', sa.JSON(), nullable=True),
    sa.Column('propensity', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('autotune_id', 'run', 'unit_id', name=op.f('pk_units'))
    )
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.create_index('ix_units_maturity', ['autotune_id', 'run', 'first_exposure_ms', 'variant_id', 'allocation_version', 'unit_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.drop_index('ix_units_maturity')

    op.drop_table('units')
    with op.batch_alter_table('exposures', schema=None) as batch_op:
        batch_op.drop_index('ix_exposures_autotune_time')

    op.drop_table('exposures')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_attribution')

    op.drop_table('events')
