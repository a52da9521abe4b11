"""Fleet state: each box's status, health and inventory; patrol point states; patrol check-ins."""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('devices',
    sa.Column('site', sa.String(length=128), nullable=False),
    sa.Column('device', sa.String(length=128), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=True),
    sa.Column('status_at', sa.Float(), nullable=True),
    sa.Column('inventory', sa.Text(), nullable=True),
    sa.Column('inventory_at', sa.Float(), nullable=True),
    sa.Column('health', sa.Text(), nullable=True),
    sa.Column('health_at', sa.Float(), nullable=True),
    sa.Column('last_seen', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('site', 'device')
    )
    op.create_table('patrol_points',
    sa.Column('site', sa.String(length=128), nullable=False),
    sa.Column('device', sa.String(length=128), nullable=False),
    sa.Column('point', sa.String(length=128), nullable=False),
    sa.Column('team', sa.String(length=64), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('site', 'device', 'point')
    )
    op.create_table('checkins',
    sa.Column('event_id', sa.String(length=128), nullable=False),
    sa.Column('site', sa.String(length=128), nullable=False),
    sa.Column('device', sa.String(length=128), nullable=False),
    sa.Column('camera', sa.String(length=128), nullable=False),
    sa.Column('point', sa.String(length=128), nullable=False),
    sa.Column('team', sa.String(length=64), nullable=True),
    sa.Column('member', sa.String(length=128), nullable=True),
    sa.Column('badge', sa.Integer(), nullable=True),
    sa.Column('at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('event_id')
    )
    with op.batch_alter_table('checkins', schema=None) as batch_op:
        batch_op.create_index('checkins_point', ['site', 'point', 'at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('checkins', schema=None) as batch_op:
        batch_op.drop_index('checkins_point')
    op.drop_table('checkins')
    op.drop_table('patrol_points')
    op.drop_table('devices')
