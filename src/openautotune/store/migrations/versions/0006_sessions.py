"""dashboard sessions: signed-in sessions kept server-side (sign-out and idle expiry end them everywhere)

Revision ID: 0006
Revises: 0005
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('dashboard_sessions',
    sa.Column('id_hash', sa.String(length=64), nullable=False),
    sa.Column('key_id', sa.String(length=32), nullable=False),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.Column('last_seen_ms', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id_hash', name=op.f('pk_dashboard_sessions'))
    )
    op.create_index(op.f('ix_dashboard_sessions_last_seen_ms'), 'dashboard_sessions', ['last_seen_ms'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_dashboard_sessions_last_seen_ms'), table_name='dashboard_sessions')
    op.drop_table('dashboard_sessions')
