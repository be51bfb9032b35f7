"""holdout: units served the holdout's fixed equal split are marked, and the maturity index covers the mark

Revision ID: 0008
Revises: 0007
"""

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

_INDEX = ['autotune_id', 'run', 'first_exposure_ms', 'variant_id', 'allocation_version', 'unit_id']


def upgrade() -> None:
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.add_column(sa.Column('holdout', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.drop_index('ix_units_maturity')
        batch_op.create_index('ix_units_maturity', [*_INDEX, 'holdout'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.drop_index('ix_units_maturity')
        batch_op.create_index('ix_units_maturity', _INDEX, unique=False)
        batch_op.drop_column('holdout')
