"""The console's tables (SQLAlchemy Core): one schema for SQLite and PostgreSQL.

Alembic migrations under `migrations/` create and change them; `Store.open` brings a database
to the newest revision. Times are epoch seconds UTC (floats); the pages show them in the site's
time zone.
"""

from __future__ import annotations

from sqlalchemy import (Column, Float, ForeignKey, Index, Integer, MetaData, String, Table, Text,
                        UniqueConstraint)

metadata = MetaData()

# Every distinct event phase received; a redelivery is refused by the unique key. `dedup` is the
# phase for start/end and `update:<payload sha256>` for updates (docs/mqtt.md).
events = Table(
    "events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(128), nullable=False),
    Column("dedup", String(80), nullable=False),
    Column("phase", String(8), nullable=False),
    Column("alarm_id", Integer, ForeignKey("alarms.id"), nullable=True),
    Column("received_at", Float, nullable=False),
    Column("payload", Text, nullable=False),
    UniqueConstraint("event_id", "dedup", name="events_once"),
)
Index("events_alarm", events.c.alarm_id)

# One row per alarm an operator handles; repeats within the group window only raise `count`.
alarms = Table(
    "alarms", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(128), nullable=False, unique=True),  # the first event of the group
    Column("site", String(128), nullable=False),
    Column("device", String(128), nullable=False),
    Column("camera", String(128), nullable=False),
    Column("zone", String(128), nullable=True),
    Column("zone_kind", String(64), nullable=True),
    Column("type", String(32), nullable=False),
    Column("label", String(64), nullable=True),
    Column("score", Float, nullable=True),
    Column("started_at", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    Column("count", Integer, nullable=False, default=1),
    Column("priority", Integer, nullable=False),
    Column("state", String(16), nullable=False),  # new | acknowledged | assigned | closed
    Column("assignee", String(128), nullable=True),
    Column("disposition", String(16), nullable=True),
    Column("note", Text, nullable=True),
    Column("location", String(64), nullable=True),  # "lat,lon"
    Column("version", Integer, nullable=False, default=1),  # optimistic locking
    Column("updated_at", Float, nullable=False),
)
Index("alarms_open", alarms.c.state, alarms.c.priority, alarms.c.started_at)
Index("alarms_group", alarms.c.camera, alarms.c.zone, alarms.c.type, alarms.c.last_seen)

# Verified media on disk; path is relative to media.dir.
media = Table(
    "media", metadata,
    Column("event_id", String(128), primary_key=True),
    Column("kind", String(16), primary_key=True),  # snapshot | clip
    Column("sha256", String(64), nullable=False),
    Column("size", Integer, nullable=False),
    Column("path", String(512), nullable=False),
    Column("received_at", Float, nullable=False),
)

# Who did what to an alarm, and when; never updated.
audit = Table(
    "audit", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alarm_id", Integer, ForeignKey("alarms.id"), nullable=False),
    Column("at", Float, nullable=False),
    Column("user", String(128), nullable=False),
    Column("action", String(32), nullable=False),
    Column("from_state", String(16), nullable=True),
    Column("to_state", String(16), nullable=True),
    Column("detail", Text, nullable=True),
)
Index("audit_alarm", audit.c.alarm_id)

users = Table(
    "users", metadata,
    Column("name", String(64), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(256), nullable=False),
    Column("created_at", Float, nullable=False),
)

# What each edge box last said about itself (retained status, health, inventory), one row per box.
# The JSON is kept as sent: the map and the boards read the parts they show.
devices = Table(
    "devices", metadata,
    Column("site", String(128), primary_key=True),
    Column("device", String(128), primary_key=True),
    Column("status", String(16), nullable=True),  # online | offline (offline: its last will, or a clean stop)
    Column("status_at", Float, nullable=True),
    Column("inventory", Text, nullable=True),
    Column("inventory_at", Float, nullable=True),
    Column("health", Text, nullable=True),
    Column("health_at", Float, nullable=True),
    Column("last_seen", Float, nullable=False),
)

# The retained `patrol/status/<point>` of every point: ok | overdue | camera_down.
patrol_points = Table(
    "patrol_points", metadata,
    Column("site", String(128), primary_key=True),
    Column("device", String(128), primary_key=True),
    Column("point", String(128), primary_key=True),
    Column("team", String(64), nullable=True),
    Column("state", String(16), nullable=False),
    Column("payload", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# Every patrol check-in (`patrol_checkin` start), once; its snapshot is in `media` under event_id.
checkins = Table(
    "checkins", metadata,
    Column("event_id", String(128), primary_key=True),
    Column("site", String(128), nullable=False),
    Column("device", String(128), nullable=False),
    Column("camera", String(128), nullable=False),
    Column("point", String(128), nullable=False),
    Column("team", String(64), nullable=True),
    Column("member", String(128), nullable=True),
    Column("badge", Integer, nullable=True),
    Column("at", Float, nullable=False),
)
Index("checkins_point", checkins.c.site, checkins.c.point, checkins.c.at)
