#!/usr/bin/env python3
"""Play the agent's publishing side in its own process (for kill -9 and restart tests, and demos).

Emits --count alarms (optionally with a snapshot and clip read from files) through an `MqttSink`
whose outbox is --outbox, prints `EMITTED <n>` once all are in the outbox, then waits up to
--linger seconds for the outbox to drain and prints `DRAINED` (exit 0) or `PENDING <n>` (exit 3).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_agent.alarms.event import Event  # noqa: E402
from edge_agent.clock import iso_utc  # noqa: E402
from edge_agent.config.models import Mqtt, Outbox  # noqa: E402
from edge_agent.publish.publisher import MqttSink  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--outbox", required=True)
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--first", type=int, default=0, help="number of the first alarm (ids are stable)")
    ap.add_argument("--snapshot", help="a JPEG to attach to every alarm")
    ap.add_argument("--clip", help="an MP4 to attach to every alarm")
    ap.add_argument("--linger", type=float, default=30.0)
    ap.add_argument("--hold", type=float, default=0.0, help="then stay connected this long (LWT tests)")
    ap.add_argument("--site", default="site1")
    ap.add_argument("--device", default="dev1")
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    cfg = Mqtt(host=a.host, port=a.port, reconnect_min_s=1, reconnect_max_s=2, outbox=Outbox(path=a.outbox))
    media = {k: Path(p).read_bytes() for k, p in (("snapshot", a.snapshot), ("clip", a.clip)) if p}
    sink = MqttSink(cfg, a.site, a.device).start()
    for i in range(a.first, a.first + a.count):
        t = 1_767_225_600.0 + i
        ev = Event(event_id=Event.make_id(a.site, a.device, "cam1", i), phase="start", type="intrusion",
                   site=a.site, device=a.device, camera="cam1", zone="track-1", label="person", score=0.9,
                   track_id=i, start=iso_utc(t), time=iso_utc(t))
        sink.emit(ev, media)
    print(f"EMITTED {a.count}", flush=True)
    drained = sink.wait_drained(a.linger)
    left = sink.outbox.depth()
    time.sleep(a.hold)
    sink.close(0.5)
    print("DRAINED" if drained else f"PENDING {left}", flush=True)
    return 0 if drained else 3


if __name__ == "__main__":
    sys.exit(main())
