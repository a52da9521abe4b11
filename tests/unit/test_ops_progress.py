"""The watchdog's verdict (ops/progress.py), the health-file check behind the container
HEALTHCHECK, and sd_notify datagrams on a real socket."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from edge_agent.ops.notify import Notifier
from edge_agent.ops.progress import ProgressWatch, judge_health_file


class Stages:
    """LiveAgent.progress()'s shape, set by the test."""

    def __init__(self) -> None:
        self.stages = {"detector": (True, 0, 0), "analytics": (True, 0, 0)}

    def progress(self):
        return dict(self.stages)


def test_a_stage_with_work_waiting_and_no_progress_is_stalled_after_stall_s():
    now = [100.0]
    watch, agent = ProgressWatch(10.0, clock=lambda: now[0]), Stages()
    assert watch.check(agent) == []
    agent.stages["detector"] = (True, 5, 1)  # moved, one frame waiting
    assert watch.check(agent) == []
    now[0] += 9.0
    assert watch.check(agent) == []
    now[0] += 2.0  # 11 s without the counter moving while a frame waits
    problems = watch.check(agent)
    assert len(problems) == 1 and problems[0].startswith("detector:")
    agent.stages["detector"] = (True, 6, 1)  # it moved again
    assert watch.check(agent) == []


def test_idle_stages_are_never_stalled_and_a_dead_thread_always_is():
    now = [0.0]
    watch, agent = ProgressWatch(5.0, clock=lambda: now[0]), Stages()
    agent.stages["analytics"] = (True, 3, 0)  # nothing to do (cameras offline): not a problem
    for _ in range(10):
        now[0] += 60.0
        assert watch.check(agent) == []
    agent.stages["analytics"] = (False, 3, 0)
    assert watch.check(agent) == ["analytics thread is not running"]


def write_health(path: Path, problems: list[str], age_s: float = 0.0) -> Path:
    path.write_text(json.dumps({"cameras": {"c": {"state": "offline"}}, "progress": {"ok": not problems, "problems": problems}}))
    t = time.time() - age_s
    os.utime(path, (t, t))
    return path


def test_health_file_verdict(tmp_path):
    good = write_health(tmp_path / "h.json", [])
    assert judge_health_file(good) == []  # an offline camera does not make the agent unhealthy
    assert judge_health_file(write_health(tmp_path / "s.json", [], age_s=31)) != []
    assert judge_health_file(write_health(tmp_path / "d.json", ["detector: stuck"])) == ["detector: stuck"]
    assert "does not exist" in judge_health_file(tmp_path / "missing.json")[0]
    (tmp_path / "bad.json").write_text("{")
    assert judge_health_file(tmp_path / "bad.json") != []


def test_healthcheck_command_exit_codes(tmp_path, capsys):
    from edge_agent.cli import main

    assert main(["healthcheck", "--file", str(write_health(tmp_path / "h.json", []))]) == 0
    assert main(["healthcheck", "--file", str(write_health(tmp_path / "u.json", ["analytics thread is not running"]))]) == 1
    assert "analytics thread is not running" in capsys.readouterr().out


def test_notifier_sends_to_a_path_and_to_an_abstract_socket(tmp_path):
    path_sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path_sock.bind(str(tmp_path / "n.sock"))
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"edge-agent-test-{os.getpid()}"
    abstract.bind("\0" + name)
    try:
        assert Notifier(str(tmp_path / "n.sock")).send("READY=1", "STATUS=ok")
        assert path_sock.recv(100) == b"READY=1\nSTATUS=ok"
        assert Notifier("@" + name).send("WATCHDOG=1")
        assert abstract.recv(100) == b"WATCHDOG=1"
    finally:
        path_sock.close()
        abstract.close()
    assert not Notifier("").send("READY=1")  # outside systemd: nothing to do
    assert not Notifier(str(tmp_path / "gone.sock")).send("READY=1")  # a vanished socket is not fatal
