"""The console's store and workflow on SQLite: events once, grouping, priorities, locking, signed ack.

The same tests run against a real PostgreSQL in tests/integration/test_central_postgres.py.
"""

from __future__ import annotations

import json

import pytest


from edge_agent.alarms.event import Event  # noqa: E402
from edge_agent.central.store import Store, Stored  # noqa: E402
from edge_agent.central.workflow import Change, Conflict, Invalid, Workflow  # noqa: E402
from edge_agent.clock import FakeClock, iso_utc  # noqa: E402
from edge_agent.config.central import CentralConfig  # noqa: E402
from edge_agent.publish.commands import CommandDispatcher  # noqa: E402

T0 = 1_767_225_600.0
SECRET = "s3cret-for-dev1"


def event(n: int, t: float, zone: str | None = "track-1", kind: str | None = "rail", type_: str = "intrusion",
          camera: str = "cam1") -> Event:
    return Event(event_id=Event.make_id("site1", "dev1", camera, n), phase="start", type=type_, site="site1",
                 device="dev1", camera=camera, zone=zone, zone_kind=kind, label="person", score=0.8,
                 start=iso_utc(t), time=iso_utc(t))


def raw(ev: Event) -> bytes:
    return ev.to_json().encode()


@pytest.fixture
def store(tmp_path):
    s = Store.open(f"sqlite:///{tmp_path / 'c.sqlite'}")
    yield s
    s.close()


def run_store_contract(store: Store) -> None:
    """Shared by the SQLite and PostgreSQL tests: the rules of docs/mqtt.md and the grouping window."""
    a = event(1, T0)
    first = store.record_event(a, raw(a), T0)
    assert first.new and first.opened
    assert not store.record_event(a, raw(a), T0 + 1).new  # a redelivered start changes nothing
    upd1 = a.next_phase("update", details={"clip": "ready"})
    upd2 = a.next_phase("update", details={"dropped": ["clip"]})
    assert store.record_event(upd1, raw(upd1), T0).new
    assert not store.record_event(upd1, raw(upd1), T0).new
    assert store.record_event(upd2, raw(upd2), T0).new  # a second, different update is kept
    assert [p["phase"] for p in store.event_payloads(first.alarm_id)] == ["start", "update", "update"]

    repeat = event(2, T0 + 60)  # same camera, zone, type within the window: counted, not a new alarm
    r = store.record_event(repeat, raw(repeat), T0 + 60)
    assert r.alarm_id == first.alarm_id and not r.opened
    other_zone = event(3, T0 + 61, zone="quay", kind="water")
    o = store.record_event(other_zone, raw(other_zone), T0 + 61)
    assert o.opened and o.alarm_id != first.alarm_id
    late = event(4, T0 + 60 + store.workflow.group_window_s + 1)
    assert store.record_event(late, raw(late), T0 + 2000).opened
    offline = event(5, T0 + 70, zone=None, kind=None, type_="camera_offline")
    store.record_event(offline, raw(offline), T0 + 70)

    early = event(6, T0 + 80, camera="cam2")  # its update overtook its start on the way
    early_update = early.next_phase("update", details={"clip": "ready"})
    assert store.record_event(early_update, raw(early_update), T0 + 81) == Stored(True, None)
    linked = store.record_event(early, raw(early), T0 + 82)
    assert [p["phase"] for p in store.event_payloads(linked.alarm_id)] == ["update", "start"]

    wf = Workflow(store, CentralConfig(), lambda t, p: None, lambda: T0)
    assert wf.get(first.alarm_id)["count"] == 2
    assert wf.get(first.alarm_id)["priority"] < wf.get(o.alarm_id)["priority"]  # rail before water


def test_store_contract_sqlite(store):
    run_store_contract(store)


def test_workflow_locking_audit_and_signed_ack(store):
    sent: list[tuple[str, bytes]] = []
    cfg = CentralConfig.model_validate({"devices": {"site1/dev1": {"command_secret": SECRET}}})
    clock = FakeClock(T0 + 5)
    wf = Workflow(store, cfg, lambda t, p: sent.append((t, p)), clock.now)
    a = event(1, T0)
    alarm = store.record_event(a, raw(a), T0).alarm_id

    acked = wf.apply(alarm, Change("acknowledge", "olga", version=1))
    assert acked["state"] == "acknowledged" and acked["version"] == 2
    with pytest.raises(Conflict):  # a second operator still looking at version 1
        wf.apply(alarm, Change("assign", "piet", version=1, assignee="team 3"))
    with pytest.raises(Invalid):
        wf.apply(alarm, Change("close", "olga", version=2, disposition="maybe"))
    wf.apply(alarm, Change("assign", "olga", version=2, assignee="team 3"))
    closed = wf.apply(alarm, Change("close", "olga", version=3, disposition="false_alarm", note="a heron"))
    assert (closed["state"], closed["disposition"], closed["note"], closed["assignee"]) == \
        ("closed", "false_alarm", "a heron", "team 3")
    with pytest.raises(Invalid):
        wf.apply(alarm, Change("acknowledge", "olga", version=4))

    trail = [(e["action"], e["user"], e["from_state"], e["to_state"]) for e in wf.audit_of(alarm)]
    assert trail == [("acknowledge", "olga", "new", "acknowledged"), ("ack_sent", "olga", None, None),
                     ("assign", "olga", "acknowledged", "assigned"), ("close", "olga", "assigned", "closed")]

    # The ack went to the box's command topic, signed, and the agent's own dispatcher executes it.
    [(topic, payload)] = sent
    assert topic == "edge/site1/dev1/cmd/ack"
    got: list[dict] = []
    box = CommandDispatcher({"ack": lambda args: got.append(args) or {"acked": True}}, secret=SECRET,
                            require_signed=True, clock=clock)
    assert box.handle(topic, payload)["ok"] is True
    assert got == [{"event_id": a.event_id, "by": "olga"}]
    assert box.handle(topic, payload)["ok"] is False  # replayed
    forged = json.loads(payload)
    forged["body"] = forged["body"].replace("olga", "mallory")
    assert CommandDispatcher({"ack": lambda a: {}}, secret=SECRET, clock=clock).handle(
        topic, json.dumps(forged).encode())["error"] == "bad signature"


def test_a_shelved_zone_is_re_enabled_when_its_time_is_up(store):
    sent: list[tuple[str, dict]] = []
    clock = FakeClock(T0)
    wf = Workflow(store, CentralConfig(), lambda t, p: sent.append((t, json.loads(p))), clock.now)
    a = event(1, T0)
    alarm = store.record_event(a, raw(a), T0).alarm_id
    wf.shelve_zone(alarm, "olga", hours=2)
    assert [(t, c["args"]) for t, c in sent] == [("edge/site1/dev1/cmd/zone",
                                                  {"camera": "cam1", "zone": "track-1", "enabled": False})]
    clock.advance(2 * 3600 - 1)
    assert wf.reenable_due_zones() == 0
    clock.advance(2)
    assert wf.reenable_due_zones() == 1 and wf.reenable_due_zones() == 0  # once
    assert sent[-1][1]["args"] == {"camera": "cam1", "zone": "track-1", "enabled": True}
    assert [e["action"] for e in wf.audit_of(alarm)] == ["shelve", "unshelve"]


def test_media_retention_deletes_old_then_oldest(store, tmp_path):
    from edge_agent.central.housekeeping import prune_media
    from edge_agent.config.central import MediaStore

    folder = tmp_path / "media"
    folder.mkdir()
    for i, age_days in enumerate((100, 10, 5, 1)):
        (folder / f"m{i}.jpg").write_bytes(b"x" * 400_000)
        store.record_media(f"ev{i}", "snapshot", "0" * 64, 400_000, f"m{i}.jpg", T0 - age_days * 86400)
    # 90 days drops m0; 1 MB keeps only the two newest of the rest
    assert prune_media(store, MediaStore(dir=str(folder), max_age_days=90, max_gb=0.001), T0) == 2
    assert sorted(p.name for p in folder.iterdir()) == ["m2.jpg", "m3.jpg"]
    assert store.media_of("ev1") == {} and store.media_of("ev3")


def test_users_add_and_the_first_admin_print_their_password_once(tmp_path, capsys, monkeypatch):
    import re

    from edge_agent.central.serve import build
    from edge_agent.cli import main
    from edge_agent.config.central import load_central
    from edge_agent.web.auth import verify_password

    conf = tmp_path / "central.yaml"
    conf.write_text("database: {url: 'sqlite:///c.sqlite'}\nmedia: {dir: media}\n")
    cfg = load_central(conf)
    first = build(cfg)  # an empty database: an admin with a generated password
    admin_pw = re.search(r"password \(shown this once\): (\S+)", capsys.readouterr().out)[1]
    assert verify_password(first.store.get_user("admin")["password_hash"], admin_pw)
    first.store.close()
    build(cfg).store.close()
    assert "admin" not in capsys.readouterr().out  # the second start says nothing

    assert main(["central", "users", "add", "olga", "--role", "operator", "--config", str(conf)]) == 0
    olga_pw = re.search(r"password \(shown once\): (\S+)", capsys.readouterr().out)[1]
    monkeypatch.setenv("VERA_PW", "vera-chosen-pw")
    assert main(["central", "users", "add", "vera", "--role", "viewer", "--config", str(conf),
                 "--password-env", "VERA_PW"]) == 0
    assert "vera-chosen-pw" not in capsys.readouterr().out
    store = Store.open(cfg.database.url)
    assert store.get_user("olga")["role"] == "operator" and verify_password(store.get_user("olga")["password_hash"], olga_pw)
    assert verify_password(store.get_user("vera")["password_hash"], "vera-chosen-pw")
    assert not verify_password(store.get_user("vera")["password_hash"], olga_pw)
    store.close()
    assert main(["central", "users", "add", "x", "--role", "operator", "--config", str(tmp_path / "none.yaml")]) == 2


def test_list_filters(store):
    from edge_agent.central.queries import list_alarms

    for n, (camera, type_) in enumerate((("cam1", "intrusion"), ("cam2", "intrusion"), ("cam2", "camera_offline"))):
        e = event(n, T0 + n, zone=None if type_ == "camera_offline" else "z", camera=camera, type_=type_)
        store.record_event(e, raw(e), T0)

    def ids(**f):
        return sorted((r["camera"], r["type"]) for r in list_alarms(store.engine, f, T0, 120, "UTC"))
    assert ids(camera="cam2") == [("cam2", "camera_offline"), ("cam2", "intrusion")]
    assert ids(camera="cam2", type="intrusion") == [("cam2", "intrusion")]
    assert ids(state="closed") == [] and len(ids()) == 3 and ids(site="elsewhere") == []
