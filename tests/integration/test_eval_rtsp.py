"""`edge-agent eval --rtsp`: short committed cases served by the real GStreamer RTSP server and
judged from the live agent's events (tests/data/eval_rtsp, cut from tests/footage by
scripts/cut_case.py: the truth is the scene geometry's)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_agent.cli import main
from edge_agent.errors import EdgeAgentError
from edge_agent.evaluate.live import ClipServer

CASES = Path(__file__).resolve().parents[1] / "data" / "eval_rtsp"


def test_eval_over_rtsp_judges_the_live_agents_alarms_from_the_cases_truth(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["eval", "--rtsp", "--concurrent", "2", str(CASES), "--out", str(out), "--json",
                 str(tmp_path / "eval.json")])
    report = json.loads((tmp_path / "eval.json").read_text())
    per_case = report["per_case"]
    assert report["mode"].startswith("rtsp"), report["mode"]
    assert code == 0 and report["failed_required"] == [], per_case
    assert per_case["rail_intrusion_10s"]["status"] == "PASS" and per_case["rail_empty_6s"]["status"] == "PASS"
    # the alarm: one intrusion in the track bed, the person's entry (2.4 s) plus the zone's 3 s dwell,
    # within the case's window; the empty case raised nothing
    starts = [json.loads(line) for line in (out / "rail_intrusion_10s" / "events.jsonl").read_text().splitlines()]
    starts = [e for e in starts if e["phase"] == "start"]
    assert [(e["type"], e["zone"], e["label"]) for e in starts] == [("intrusion", "track-bed", "person")]
    assert 5.4 - 1.0 <= starts[0]["media_time"] <= 8.4
    assert report["false_alarms"] == 0 and per_case["rail_empty_6s"]["alarms"] == 0
    # the frames came over RTSP: the agent measured the clips' 1 s GOP (10 frames at 10 fps, as
    # encoded), chose a decode mode, and each stream was played through once, to its last frame
    for name, seconds in (("rail_intrusion_10s", 10.0), ("rail_empty_6s", 6.0)):
        rtsp = per_case[name]["rtsp"]
        assert rtsp["gop_s"] == 1.0 and rtsp["decode"], rtsp
        assert seconds - 0.5 <= rtsp["played_s"] < seconds, rtsp
        assert rtsp["analysed"] > 0
    assert "camera (rtsp)" in capsys.readouterr().out


def test_a_server_that_cannot_start_says_why(tmp_path):
    with pytest.raises(EdgeAgentError, match="did not start.*no such file: .*missing.mp4"):
        ClipServer({"cam": tmp_path / "missing.mp4"})
