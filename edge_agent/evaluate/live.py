"""`edge-agent eval --rtsp`: the cases served by a real RTSP server and analysed by the live agent.

Replay (report.py) reads each clip file by file: every frame decoded, no overload policy. Here the
same cases go through what runs on a box: the project's GStreamer RTSP server (scripts/rtsp_server.py)
serves each clip once, from its first frame, and `LiveAgent` analyses `concurrent` of them at once
as cameras of one agent, with the shipped defaults (keyframe-only decode of quiet cameras, the
overload policy, tiles). A stream's media time starts at 0 on its first connection
(sources/rtsp.py), so the agent's event and frame times are the case's media time, and judge.py
and score.py judge them as in replay. A camera whose clip ended is stopped at once, before it
could reconnect and be served the clip again. One agent has one site time zone and one wall
clock, which is moved to the cases' `start` (schedules): cases are batched by (timezone, start).
"""

from __future__ import annotations

import itertools
import json
import resource
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..alarms.event import Event
from ..app import LiveAgent
from ..clock import ShiftedClock, parse_iso
from ..config.models import AgentConfig, Camera
from ..errors import EdgeAgentError
from .cases import Case
from .score import FrameScorer

SERVER = Path(__file__).resolve().parents[2] / "scripts" / "rtsp_server.py"
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, which has GStreamer's bindings (gi); a venv has not
ONLINE_WITHIN_S = 30.0  # a served clip's first frame comes about 1.2 s after the connect (on a quiet box)
STUCK_S = 60.0  # online, yet no new packet this long: given up (the source reports a stall after 10 s)
POLL_S = 0.1  # well under the source's first reconnect (0.19 s backoff, then a second to open)
# The agent's alarms about itself, not about the scene: replay cannot raise them, so they are
# counted beside the case (analysis_degraded is the overload policy's signal), never judged.
AGENT_TYPES = ("camera_offline", "analysis_degraded")


class ClipServer:
    """scripts/rtsp_server.py on a free loopback port, each clip at rtsp://127.0.0.1:PORT/<name>,
    played once per connection from its first frame."""

    def __init__(self, clips: Mapping[str, Path]) -> None:
        if not SERVER.is_file():
            raise EdgeAgentError(f"--rtsp needs {SERVER} (a source checkout of edge-agent)")
        cmd = [SYSTEM_PYTHON, str(SERVER), "--port", "0", *(f"{name}={path}" for name, path in clips.items())]
        self.errors = tempfile.TemporaryFile("w+")  # not a pipe: nobody reads it while the server runs
        try:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.errors, text=True)
        except OSError as exc:
            raise EdgeAgentError(f"--rtsp: cannot start {SYSTEM_PYTHON} {SERVER.name} ({exc.strerror or exc}); "
                                 "scripts/setup.sh installs Debian's GStreamer RTSP server") from None
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line.startswith("ready "):
            self.proc.kill()
            self.proc.wait(5)
            self.errors.seek(0)
            err = self.errors.read().strip().splitlines()
            raise EdgeAgentError(f"--rtsp: the RTSP server did not start ({err[-1] if err else line.strip()!r}); "
                                 "scripts/setup.sh installs Debian's GStreamer RTSP server")
        self.port = int(line.split()[1])

    def url(self, name: str) -> str:
        return f"rtsp://127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
        self.errors.close()


class Collector:
    """The agent's sink: every event phase as the dict events.jsonl would hold; media are dropped."""

    def __init__(self) -> None:
        self.events: dict[str, list[dict[str, Any]]] = {}

    def emit(self, event: Event, media: Mapping[str, bytes]) -> Event:
        self.events.setdefault(event.camera, []).append(json.loads(event.to_json()))
        return event

    def close(self) -> None:
        return None


@dataclass
class LiveCamera:
    """What the live agent did with one case's stream (printed beside the table)."""

    camera: str
    decode: set[str] = field(default_factory=set)  # decode modes seen: full, keyframes
    gop_s: float | None = None
    online: bool = False
    played_s: float = 0.0  # media time of the last packet the stream delivered
    replaced: int = 0  # frames replaced in the detector's slot before they were analysed
    analysed: int = 0
    max_level: int = 0  # the overload policy's highest level while this camera's batch ran
    degraded: int = 0  # analysis_degraded alarms raised for it
    error: str | None = None


@dataclass
class Played:
    """One case played over RTSP: its events, frames analysed, what it cost and how it ran."""

    case: Case
    events: list[dict[str, Any]]
    scorer: FrameScorer
    cpu_s: float  # the agent's process CPU, shared by media seconds
    tiles: int  # tiles detected beside its frames, and seconds in the detector: the batch's, shared by frames
    detect_s: float
    live: LiveCamera


def camera_ids(cases: list[Case]) -> list[str]:
    """One camera id (and mount name) per case, unique even when two folders hold the same name."""
    seen: dict[str, int] = {}
    out = []
    for case in cases:
        n = seen[case.name] = seen.get(case.name, 0) + 1
        out.append(case.name if n == 1 else f"{case.name}.{n}")
    return out


def batches(cases: list[Case], concurrent: int) -> list[list[int]]:
    """Indexes of the cases one agent runs together: same time zone and start, at most
    `concurrent`, of similar length (a batch lasts as long as its longest clip)."""
    key = lambda i: (cases[i].spec.get("timezone", "UTC"), cases[i].spec.get("start", ""))  # noqa: E731
    out = []
    for _, group in itertools.groupby(sorted(range(len(cases)), key=key), key=key):
        ordered = sorted(group, key=lambda i: duration(cases[i]))
        out += [ordered[k:k + concurrent] for k in range(0, len(ordered), concurrent)]
    return out


def duration(case: Case) -> float:
    video = case.spec["video"]
    return float(video.get("frames", 0)) / float(video.get("fps", 10))


def play(cases: list[Case], base: AgentConfig, detector: Any, model: str, concurrent: int,
         start_default: str) -> list[Played]:
    """Every case through the live agent over RTSP, `concurrent` cameras at a time."""
    ids = camera_ids(cases)
    server = ClipServer({cid: case.folder / case.spec["clip"] for cid, case in zip(ids, cases)})
    played: dict[int, Played] = {}
    try:
        for batch in batches(cases, max(1, concurrent)):
            runs = _Batch([cases[i] for i in batch], [ids[i] for i in batch], server, base, detector, model)
            for i, p in zip(batch, runs.run(start_default)):
                played[i] = p
    finally:
        server.close()
    return [played[i] for i in range(len(cases))]


class _Batch:
    """One live agent on a few cases' streams, until every stream has ended."""

    def __init__(self, cases: list[Case], ids: list[str], server: ClipServer, base: AgentConfig, detector: Any,
                 model: str) -> None:
        from ..config.loader import load_zones
        from ..detect.registry import class_names

        self.cases = dict(zip(ids, cases))
        self.live = {cid: LiveCamera(cid) for cid in ids}
        self.scorers = {cid: FrameScorer(case) for cid, case in self.cases.items()}
        tz = cases[0].spec.get("timezone", "UTC")
        cameras = [Camera(id=cid, url=server.url(cid), detect_fps=case.spec.get("fps", 5.0))
                   for cid, case in self.cases.items()]
        self.cfg = base.model_copy(update={
            "site": base.site.model_copy(update={"timezone": tz}), "cameras": cameras,
            "mqtt": base.mqtt.model_copy(update={"enabled": False})})  # an evaluation publishes nothing
        labels = class_names(model)
        self.zones = {cid: load_zones(case.folder / case.spec["zones"], labels) for cid, case in self.cases.items()}
        self.detector = detector

    def run(self, start_default: str) -> list[Played]:
        first = next(iter(self.cases.values()))
        clock = ShiftedClock(parse_iso(first.spec.get("start", start_default)) - time.time())
        sink = Collector()
        agent = LiveAgent(self.cfg, self.zones, self.detector, sink, clock=clock,
                          on_detections=lambda frame, dets: self.scorers[frame.camera](frame, dets))
        cpu0 = _cpu()
        agent.start()
        try:
            self._watch(agent)
        finally:
            agent.stop()
        cpu = _cpu() - cpu0
        for cid, live in self.live.items():
            self._finish(cid, live, agent)
        media = sum(duration(c) for c in self.cases.values()) or 1.0
        frames = sum(live.analysed for live in self.live.values()) or 1
        out = []
        for cid, case in self.cases.items():
            live, events = self.live[cid], sink.events.get(cid, [])
            live.degraded = sum(e["type"] == "analysis_degraded" and e["phase"] == "start" for e in events)
            judged = [e for e in events if e["type"] not in AGENT_TYPES]
            share = live.analysed / frames
            out.append(Played(case, judged, self.scorers[cid], cpu * duration(case) / media,
                              round(agent.tiling.tiles * share), agent.batcher.infer_s * share, live))
        return out

    def _finish(self, cid: str, live: LiveCamera, agent: LiveAgent) -> None:
        """The camera's counters, and how much of its clip the stream delivered."""
        case = self.cases[cid]
        counters = agent.health.counters(cid)
        live.replaced, live.analysed = counters["frames_dropped"], counters["frames_analysed"]
        if counters["decode_switches"]:  # from full decode, the first mode: a switch between two polls counts too
            live.decode.add("keyframes")
        live.played_s = agent.cameras[cid].ring.latest_time or 0.0  # every packet is ringed, keyframes or not
        last_frame = duration(case) - 1.0 / float(case.spec["video"].get("fps", 10))
        if live.online and live.played_s < last_frame - 0.05:  # a stall or a reconnect: the rest went unseen
            live.error = f"the stream ended at {live.played_s:.1f} s of {duration(case):.1f} s"

    def _watch(self, agent: LiveAgent) -> None:
        """Supervise the agent until every stream has ended (or never came), stopping each camera
        as its stream ends. A loaded box reads a stream at half its real time or slower, so there is
        no deadline while a stream moves on; one that stops delivering is stalled (the source's
        watchdog) and ends here; STUCK_S is a safety net under that."""
        began = time.monotonic()
        running = {cid: (began, -1.0) for cid in self.cases}  # camera -> (when its media time last moved, it)
        last_supervise = 0.0
        while running:
            now = time.monotonic()
            if now - last_supervise >= 0.5:  # what run.py's main loop does, about twice a second
                agent.supervise()
                last_supervise = now
            snapshot = agent.health.snapshot()["cameras"]
            for cid, (moved, media) in list(running.items()):
                live, cam = self.live[cid], snapshot.get(cid, {})
                live.max_level = max(live.max_level, agent.policy.level)
                live.decode.update([cam["decode"]] if cam.get("decode") else [])
                live.gop_s = cam.get("gop_s", live.gop_s)
                latest = agent.cameras[cid].ring.latest_time or 0.0
                if latest > media:
                    moved = now
                    running[cid] = (now, latest)
                if cam.get("state") == "online":
                    live.online = True
                    if now - moved < STUCK_S:
                        continue
                    live.error = f"no new frame for {STUCK_S:.0f} s"
                elif not live.online and now - began < ONLINE_WITHIN_S:
                    continue
                elif not live.online:
                    live.error = f"never online ({cam.get('state')}: {cam.get('last_error')})"
                agent.cameras[cid].source.request_stop()  # ended (or never came): no second pass
                del running[cid]
            time.sleep(POLL_S)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
