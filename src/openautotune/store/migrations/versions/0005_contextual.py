"""contextual policies: the published CMAB weights and the server's model, per version

Revision ID: 0005
Revises: 0004
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('contextual_policies',
    sa.Column('autotune_id', sa.String(length=200), nullable=False),
    sa.Column('incarnation_ms', sa.BigInteger(), nullable=False),
    sa.Column('run', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('as_of_ms', sa.BigInteger(), nullable=False),
    sa.Column('sample_rate', sa.Float(), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('model', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('autotune_id', 'incarnation_ms', 'run', 'version', name=op.f('pk_contextual_policies'))
    )


def downgrade() -> None:
    op.drop_table('contextual_policies')
