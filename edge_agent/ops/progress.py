"""Is the live agent making progress? The one answer behind systemd's watchdog and the container
HEALTHCHECK (`edge-agent healthcheck`).

Progress means: the main loop turns (it calls `ServiceWatch.step`; when it hangs, nothing is
pinged and the health file goes stale), and the detector and analytics threads are alive and take
the frames given to them: a stage with work waiting whose done-counter has not moved for
`stall_s` is stalled. A stage with nothing to do is not stalled, so cameras being offline never
make the agent unhealthy: a restart would not bring a dead camera back, and one dead camera must
not restart the box in a loop (it is reported as camera_offline instead).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Protocol

from .notify import Notifier

HEALTH_MAX_AGE_S = 30.0  # the health file is rewritten every 2 s while the main loop turns


class Progressing(Protocol):
    """What LiveAgent.progress() returns, per worker thread: (alive, items done, items waiting)."""

    def progress(self) -> dict[str, tuple[bool, int, int]]: ...


class ProgressWatch:
    def __init__(self, stall_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.stall_s = stall_s
        self.clock = clock
        self._moved: dict[str, tuple[int, float]] = {}  # stage -> (done, monotonic it last moved or idled)

    def check(self, agent: Progressing) -> list[str]:
        """The problems, one line each; empty while every stage makes progress."""
        now = self.clock()
        problems = []
        for stage, (alive, done, waiting) in agent.progress().items():
            if not alive:
                problems.append(f"{stage} thread is not running")
                continue
            last = self._moved.get(stage)
            if last is None or done != last[0] or not waiting:
                self._moved[stage] = (done, now)
            elif now - last[1] > self.stall_s:
                problems.append(f"{stage}: {waiting} item(s) waiting, none done for {now - last[1]:.0f} s")
        return problems


class ServiceWatch:
    """Called from the main loop: records the verdict in health and pings systemd only while it is good."""

    def __init__(self, stall_s: float, notifier: Notifier | None = None) -> None:
        self.progress = ProgressWatch(stall_s)
        self.notifier = notifier or Notifier()

    def started(self, cameras: int) -> None:
        self.notifier.send("READY=1", f"STATUS=running {cameras} camera(s)")

    def step(self, agent: Any) -> list[str]:
        problems = self.progress.check(agent)
        agent.health.set_progress(problems)
        if problems:
            self.notifier.send(f"STATUS=stalled: {'; '.join(problems)}")
        else:
            self.notifier.send("WATCHDOG=1")
        return problems

    def stopping(self) -> None:
        self.notifier.send("STOPPING=1", "STATUS=stopping")


def judge_health_file(path: Path, max_age_s: float = HEALTH_MAX_AGE_S, now: float | None = None) -> list[str]:
    """What is wrong according to the health file the main loop writes; empty when healthy."""
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
        snap = json.loads(path.read_text())
    except FileNotFoundError:
        return [f"{path} does not exist yet (the agent has not started its main loop)"]
    except (OSError, ValueError) as exc:
        return [f"{path} cannot be read: {exc}"]
    problems = []
    if age > max_age_s:
        problems.append(f"{path} is {age:.0f} s old: the main loop has stopped")
    progress = snap.get("progress") or {}
    if not progress.get("ok", False):
        problems += progress.get("problems") or ["the health file has no progress verdict"]
    return problems


def cli_healthcheck(args) -> int:
    problems = judge_health_file(Path(args.file), args.max_age or HEALTH_MAX_AGE_S)
    print("healthy" if not problems else "unhealthy: " + "; ".join(problems))
    return 1 if problems else 0
