"""Media parts in the database, so that several consumers of one shared subscription can assemble
a clip whose chunks reached different processes."""

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('media_chunks',
    sa.Column('event_id', sa.String(length=128), nullable=False),
    sa.Column('media', sa.String(length=16), nullable=False),
    sa.Column('idx', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('received_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('event_id', 'media', 'idx')
    )


def downgrade() -> None:
    op.drop_table('media_chunks')
