"""`edge-agent replay` on bad arguments: one clear line and exit 2, never a traceback or a silent default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_agent.alarms.event import Event
from edge_agent.alarms.sink import FolderSink
from edge_agent.cli import main

FOOTAGE = Path(__file__).parents[1] / "footage"
VIDEO = FOOTAGE / "rail_empty.mp4"
ZONES = FOOTAGE / "zones" / "rail_empty.yaml"


def _replay(tmp_path: Path, *extra: str) -> list[str]:
    return ["replay", str(VIDEO), "--zones", str(ZONES), "--out", str(tmp_path / "out"), "--no-progress", *extra]


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--fps", "0"], "--fps must be a positive number"),
        (["--fps", "-2"], "--fps must be a positive number"),
        (["--start", "yesterday"], "--start 'yesterday' is not an ISO 8601 time"),
        (["--camera", "quay 1"], "--camera 'quay 1' is not a valid camera id"),
    ],
)
def test_bad_arguments_exit_2_with_one_clear_line(tmp_path, capsys, extra, words) -> None:
    assert main(_replay(tmp_path, *extra)) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_an_output_path_that_is_a_file_is_a_clear_error(tmp_path, capsys) -> None:
    (tmp_path / "out").write_text("not a folder")
    assert main(_replay(tmp_path)) == 2
    err = capsys.readouterr().err
    assert f"--out {tmp_path / 'out'}: cannot write" in err


def test_a_stream_url_is_refused_without_echoing_its_password(tmp_path, capsys) -> None:
    args = _replay(tmp_path)
    args[1] = "rtsp://admin:Secr3tPass@10.0.0.5:554/stream1"
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "replay reads a video file, not a stream: rtsp://***@10.0.0.5:554/stream1" in err
    assert "Secr3tPass" not in err


def _event(n: int) -> Event:
    return Event(event_id=f"e{n}", phase="start", type="intrusion", site="s", device="d", camera="c",
                 start="2026-01-01T00:00:00.000Z")


def test_replay_output_starts_empty_and_the_live_store_appends(tmp_path) -> None:
    for append, expected in ((True, ["e1", "e2"]), (False, ["e2"])):
        out = tmp_path / str(append)
        first = FolderSink(out)
        first.emit(_event(1), {})
        first.close()
        second = FolderSink(out, append=append)
        second.emit(_event(2), {})
        second.close()
        ids = [json.loads(line)["event_id"] for line in (out / "events.jsonl").read_text().splitlines()]
        assert ids == expected
