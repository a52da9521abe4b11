"""Structure-aware fuzzing (issue 14): valid inputs with one key, value or type changed.

Random bytes die in the YAML or JSON parser and prove little; here each example starts from a
valid document (a zone file, cameras.yaml, the patrol points, a signed MQTT command, an event
message for `central`) and changes one thing in it: a value replaced by one of another type, a
key deleted, renamed or added. The product must never raise an unexpected exception; a config
refusal names the file, the line and the key, a command refusal names the command's field, and
`central` drops a bad event with its field named and keeps going.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.errors import ConfigError

EXAMPLES = 1000
SETTINGS = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
ROOT = Path(__file__).resolve().parents[2]

TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12)
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-10**15, 10**15), st.floats(allow_nan=True, allow_infinity=True),
    TEXT, st.lists(st.integers(-5, 5), max_size=3), st.lists(TEXT, max_size=2),
    st.dictionaries(st.text("abcxyz_", min_size=1, max_size=6), st.integers(), max_size=2),
    st.sampled_from(["", "-1", "1e309", "nan", "25:99", "0.0.0.0", "../../etc/passwd"]),
)
NEW_KEY = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=10)
Path_ = tuple  # a key path: dict keys and list indices from the root


def key_paths(node: Any, prefix: Path_ = ()) -> list[Path_]:
    out: list[Path_] = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, value in items:
        out.append((*prefix, key))
        out += key_paths(value, (*prefix, key))
    return out


def _at(doc: Any, path: Path_) -> Any:
    for key in path:
        doc = doc[key]
    return doc


@st.composite
def mutated(draw, base: dict[str, Any]) -> tuple[dict[str, Any], str, tuple[str, ...]]:
    """(document, what changed, the keys a refusal may name, one of them at least): one value of
    another type, or one key deleted, renamed (the old name missing, the new one unknown) or added."""
    doc = copy.deepcopy(base)
    path = draw(st.sampled_from(key_paths(base)))
    parent, key = _at(doc, path[:-1]), path[-1]
    named = next((str(k) for k in reversed(path) if isinstance(k, str)), "")  # a list item: its list's key
    kind = draw(st.sampled_from(["value", "delete", "rename", "add"]))
    if kind == "value":
        parent[key] = draw(VALUES)
    elif kind == "delete":
        del parent[key]
    elif isinstance(parent, dict):
        new = draw(NEW_KEY.filter(lambda k: k not in parent))
        if kind == "rename":
            parent[new] = parent.pop(key)
            return doc, f"{kind} {'.'.join(map(str, path))}", (named, new)
        parent[new] = draw(VALUES)
        named = new
    else:  # rename/add in a list: one more item of any kind
        parent.append(draw(VALUES))
    return doc, f"{kind} {'.'.join(map(str, path))}", (named,)


def _write(tmp: Path, name: str, doc: dict[str, Any]) -> Path:
    path = tmp / name
    path.write_text(yaml.dump(doc, Dumper=yaml.CSafeDumper, sort_keys=False, allow_unicode=True))
    return path


def assert_config_refusal(err: ConfigError, path: Path, named: tuple[str, ...], what: str) -> None:
    """Every problem is `file:line: ...`, and one of them names the changed key."""
    assert err.problems, what
    for problem in err.problems:
        assert re.match(rf"{re.escape(str(path))}:\d+: ", problem), (what, problem)
    assert any(n in p for n in named for p in err.problems), (what, err.problems)


def fuzz_yaml(tmp: Path, name: str, base: dict[str, Any], load) -> None:
    @SETTINGS
    @given(mutated(base))
    def check(case):
        doc, what, named = case
        path = _write(tmp, name, doc)
        try:
            load(path)
        except ConfigError as err:
            assert_config_refusal(err, path, named, what)

    check()


ZONES = {
    "zones": [
        {"name": "track-bed", "kind": "rail", "polygon": [[0.5, 0.4], [0.61, 0.4], [1.0, 0.78], [0.0, 1.0]],
         "labels": ["person"], "dwell_s": 3.0, "schedule": ["19:00-06:00"], "min_score": 0.4, "min_size": 0.01,
         "max_size": 0.8, "aspect": [0.1, 10], "track_score": {"median": 0.5, "window": 5},
         "exclude": [[[0.5, 0.5], [0.55, 0.5], [0.55, 0.6]]], "anchor": "bottom_center", "cooldown_s": 30},
        {"name": "harbour", "kind": "water", "polygon": [[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]],
         "labels": ["boat"], "dwell_s": 2.0, "stationary_s": 60},
    ],
    "lines": [{"name": "gate", "points": [[0.3, 0.98], [0.3, 0.6]], "direction": "in", "labels": ["person"],
               "hysteresis": 0.02}],
    "masks": [[[0.8, 0.1], [0.9, 0.1], [0.9, 0.3], [0.8, 0.3]]],
    "background": {"learn_s": 10, "radius": 0.02},
}


def test_zone_files(tmp_path):
    from edge_agent.config.loader import COCO80, load_zones

    load_zones(_write(tmp_path, "base.yaml", ZONES), COCO80)  # the base is valid
    fuzz_yaml(tmp_path, "zones.yaml", ZONES, lambda p: load_zones(p, COCO80))


def test_cameras_yaml(tmp_path):
    from edge_agent.config.loader import load_all

    (tmp_path / "zones").mkdir()
    for cam in ("rail-east", "quay"):
        _write(tmp_path / "zones", f"{cam}.yaml", {"zones": ZONES["zones"][:1]})
    base = {
        "site": {"id": "harbour-north", "name": "Harbour", "timezone": "Europe/Amsterdam"},
        "device": {"id": "edge-01"},
        "detector": {"model": "yolov3-tiny", "min_score": 0.3, "max_batch": 4},
        "alarms": {"pre_roll_s": 3, "post_roll_s": 3, "max_clip_s": 20, "store_dir": "data/media"},
        "mqtt": {"enabled": True, "host": "127.0.0.1", "port": 1883, "topic_prefix": "edge",
                 "outbox": {"path": "data/outbox.sqlite"}},
        "cameras": [
            {"id": "rail-east", "name": "Rail east", "url": "rtsp://10.0.0.5/stream1", "detect_fps": 5,
             "location": {"lat": 51.9, "lon": 4.4}},
            {"id": "quay", "url": "rtsp://10.0.0.6/stream1", "enabled": True, "idle_interval_s": 2},
        ],
    }
    load_all(_write(tmp_path, "base.yaml", base))
    fuzz_yaml(tmp_path, "cameras.yaml", base, load_all)


def test_patrol_points(tmp_path):
    from edge_agent.patrol.points import load_patrol

    full = yaml.safe_load((ROOT / "configs" / "patrol_points.yaml").read_text())
    base = {**full, "teams": full["teams"][:2], "points": [p for p in full["points"] if p["team"] in ("T01", "T02")][:3]}
    base["roster"] = [m for m in full["roster"] if m["team"] in ("T01", "T02")][:2]
    load_patrol(_write(tmp_path, "base.yaml", base))
    fuzz_yaml(tmp_path, "patrol.yaml", base, load_patrol)


class Tracebacks(logging.Handler):
    """Log records that carry an exception: a traceback in the log is what fuzzing must not see."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.records.append(record)


def _watching(logger: str) -> Tracebacks:
    handler = Tracebacks()
    logging.getLogger(logger).addHandler(handler)
    return handler


def test_mqtt_commands():
    """A signed `ack` command (the real handler of the live agent) with one field changed: the
    dispatcher answers every one, and a refusal names the field."""
    from edge_agent.clock import FakeClock
    from edge_agent.publish.commands import CommandDispatcher, envelope
    from edge_agent.run import _Control, _handlers

    clock = FakeClock(1_767_225_600.0)
    topic, secret = "edge/site1/dev1/cmd/ack", "fuzz-secret"
    base = {"request_id": "r-1", "issued_at": clock.now() - 1, "ttl": 60.0,
            "args": {"event_id": "site1-dev1-cam1-1", "by": "operator"}}
    handlers = _handlers(_Control(), "unused.yaml")
    tracebacks = _watching("edge_agent")

    @SETTINGS
    @given(mutated(base))
    def check(case):
        doc, what, named = case
        dispatcher = CommandDispatcher({"ack": handlers["ack"]}, secret, require_signed=True, clock=clock)
        reply = dispatcher.handle(topic, envelope(secret, topic, doc))
        assert isinstance(reply, dict) and isinstance(reply["ok"], bool), what
        if not reply["ok"]:
            assert any(n in reply["error"] for n in named), (what, reply["error"])
        assert not tracebacks.records, (what, tracebacks.records[0].getMessage())

    try:
        check()
    finally:
        logging.getLogger("edge_agent").removeHandler(tracebacks)


def test_central_ingest(tmp_path):
    """An alarm event as `central` receives it, with one field changed: stored, or dropped with the
    field named; never an exception out of the ingest (which would stop it for every box)."""
    from edge_agent.central.ingest import Changes, Ingest
    from edge_agent.central.store import Store
    from edge_agent.config.central import CentralConfig
    from tests.unit.test_central_store import T0, event

    cfg = CentralConfig.model_validate({"database": {"url": f"sqlite:///{tmp_path / 'c.sqlite'}"},
                                        "media": {"dir": str(tmp_path / "media")}})
    ingest = Ingest(cfg, Store.open(cfg.database.url), Changes())
    base = json.loads(event(1, T0).to_json())
    base.update(bbox=[0.1, 0.2, 0.3, 0.4], media_time=12.5, track_id=3, details={"direction": "in"},
                location={"lat": 51.9, "lon": 4.4})
    tracebacks = _watching("edge_agent")
    drops: list[logging.LogRecord] = []
    dropped = logging.Handler(logging.ERROR)
    dropped.emit = drops.append  # the refusal, as the operator reads it
    logging.getLogger("edge_agent.central.ingest").addHandler(dropped)

    @SETTINGS
    @given(mutated(base))
    def check(case):
        doc, what, named = case
        drops.clear()
        before = ingest.counts["dropped"]
        ingest.handle("edge/site1/dev1/alarms", json.dumps(doc).encode())
        if ingest.counts["dropped"] > before:
            assert any(n in r.getMessage() for n in named for r in drops), (what, [r.getMessage() for r in drops])
        assert not tracebacks.records, (what, tracebacks.records[0].getMessage())

    try:
        check()
    finally:
        logging.getLogger("edge_agent").removeHandler(tracebacks)
        logging.getLogger("edge_agent.central.ingest").removeHandler(dropped)
        ingest.store.close()
