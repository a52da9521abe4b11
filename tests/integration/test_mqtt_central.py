"""`edge-agent central` as a user runs it: prints alarms, writes events.jsonl and media, exits on --count."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from edge_agent.publish.publisher import MqttSink
from tests.fixtures.mosquitto import mqtt_settings, sample_event, sample_media


def test_central_cli_prints_writes_and_exits_after_count(mosquitto, tmp_path):
    conf = tmp_path / "cameras.yaml"
    conf.write_text(f"site: {{id: s}}\ndevice: {{id: d}}\nmqtt:\n  port: {mosquitto.port}\n  topic_prefix: plant\n")
    out = tmp_path / "central"
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_agent.cli", "central", "--config", str(conf), "--out", str(out),
         "--count", "3", "--duration", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={"EDGE_CENTRAL_CLIENT_ID": "cli-central", "PATH": "/usr/bin:/bin"},
    )
    try:
        deadline = time.monotonic() + 15  # wait until the broker has its subscription
        while "Received SUBSCRIBE from cli-central" not in mosquitto.log.read_text(errors="replace"):
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.05)
        time.sleep(0.2)
        cfg = mqtt_settings(mosquitto, tmp_path / "outbox.sqlite", topic_prefix="plant")
        sink = MqttSink(cfg, "site1", "dev1").start()
        media = {"snapshot": sample_media(frames=2)["snapshot"]}
        sent = [sink.emit(sample_event(i), media).event_id for i in range(3)]
        stdout, stderr = proc.communicate(timeout=30)
        sink.close(1)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr[-2000:]
    assert [line.split("id=")[1] for line in stdout.splitlines() if line.startswith("ALARM")] == sent
    assert "3 complete event phases" in stdout
    assert [json.loads(line)["event_id"] for line in (out / "events.jsonl").read_text().splitlines()] == sent
    assert all((out / "media" / eid / "snapshot.jpg").is_file() for eid in sent)



def test_a_restarted_central_still_drops_what_it_already_wrote(tmp_path):
    """The seen set lived in memory only: after a restart into the same folder every resend by an
    agent (it resends whatever it had not seen acknowledged) was written to events.jsonl again."""
    from edge_agent.publish.central import Central

    start = sample_event(1).to_json().encode()
    update = sample_event(1).next_phase("update", details={"n": 1}).to_json().encode()
    first = Central(tmp_path, "edge", echo=lambda line: None)
    first.handle("edge/site1/dev1/alarms", start)
    first.handle("edge/site1/dev1/alarms", update)
    first.close()
    with open(tmp_path / "events.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"event_id": "cut by a cra')  # a crash mid-line must not stop the next start
    again = Central(tmp_path, "edge", echo=lambda line: None)
    again.handle("edge/site1/dev1/alarms", start)
    again.handle("edge/site1/dev1/alarms", update)
    again.handle("edge/site1/dev1/alarms", sample_event(2).to_json().encode())
    again.close()
    assert again.counts["duplicates"] == 2 and again.counts["events"] == 1
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["event_id"] == sample_event(2).event_id  # not glued to the cut line


def test_alarm_lines_are_in_the_sites_time_with_its_offset(tmp_path):
    """A person reads these lines: UTC stamps made the operator convert every alarm by hand."""
    from edge_agent.clock import parse_iso
    from edge_agent.publish.central import Central

    ev = sample_event(1)
    lines: list[str] = []
    central = Central(tmp_path, "edge", echo=lines.append, timezone="Europe/Amsterdam")
    central.handle("edge/site1/dev1/alarms", ev.to_json().encode())
    central.close()
    from datetime import datetime
    from zoneinfo import ZoneInfo

    local = datetime.fromtimestamp(parse_iso(ev.time or ev.start), ZoneInfo("Europe/Amsterdam"))
    expected = local.strftime("%Y-%m-%d %H:%M:%S ") + local.isoformat()[-6:]
    (alarm,) = [line for line in lines if line.startswith("ALARM")]
    assert alarm.startswith(f"ALARM {expected} ") and expected[-6:] in ("+01:00", "+02:00")
