"""Run evaluation cases through `replay.run_replay` and print alarm quality.

One replay per case, with the case's detect fps, start time and time zone; a `--config` gives
the detector and alarm settings (the site's time zone still comes from the case).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..clock import parse_iso
from ..errors import EdgeAgentError
from ..config.models import AgentConfig, Device, Site
from .cases import Case, load_cases
from .judge import judge
from ..detect.overload import SHED_ORDER
from .live import LiveCamera, duration, play
from .score import BUCKETS, FrameScorer, Tally, score_visits

DEFAULT_START = "2026-06-01T10:00:00Z"
REPLAY_MODE = "replay (file by file, every frame decoded, no overload policy)"


@dataclass
class CaseResult:
    name: str
    known_miss: str | None
    reasons: list[str]
    empty: bool
    alarms: int
    frames: int
    media_s: float
    wall_s: float
    visits: Tally = field(default_factory=Tally)
    per_frame: Tally = field(default_factory=Tally)
    tiles: int = 0  # tiles detected beside the analysed frames
    detect_s: float = 0.0  # seconds in the detector, frames and tiles
    live: LiveCamera | None = None  # how the live agent ran it (--rtsp)

    @property
    def passed(self) -> bool:
        return not self.reasons

    @property
    def status(self) -> str:
        if self.passed:
            return "PASS (known_miss: now passes)" if self.known_miss else "PASS"
        return "KNOWN MISS" if self.known_miss else "FAIL"


def _config_for(case: Case, base: AgentConfig | None) -> AgentConfig:
    tz = case.spec.get("timezone", "UTC")
    if base is None:
        return AgentConfig(site=Site(id="eval", timezone=tz), device=Device(id="eval"))
    return base.model_copy(update={"site": base.site.model_copy(update={"timezone": tz})})


def evaluate_case(case: Case, out_dir: Path, config: AgentConfig | None = None,
                  model: str | None = None) -> CaseResult:
    from ..replay import run_replay

    scorer = FrameScorer(case)
    result = run_replay(case.folder / case.spec["clip"], case.folder / case.spec["zones"], out_dir,
                        config=_config_for(case, config), camera_id="cam",
                        start=parse_iso(case.spec.get("start", DEFAULT_START)),
                        fps=case.spec.get("fps", 5.0), model=model, on_detections=scorer)
    events = [json.loads(line) for line in (out_dir / "events.jsonl").read_text().splitlines()]
    res = case_result(case, events, result.frames, result.media_seconds, result.wall_seconds, scorer)
    res.tiles, res.detect_s = result.tiles, result.detect_seconds
    return res


def case_result(case: Case, events: list[dict[str, Any]], frames: int, media_s: float, cost_s: float,
                scorer: FrameScorer) -> CaseResult:
    """One case judged from its events (as in events.jsonl) and its frames' scores, however it ran."""
    from ..config.loader import load_zones

    starts = [e for e in events if e["phase"] == "start"]
    res = CaseResult(case.name, case.known_miss, judge(case.spec, events), case.empty, len(starts),
                     frames, media_s, cost_s, per_frame=scorer.tally)
    res.visits = score_visits(case, load_zones(case.folder / case.spec["zones"]).zones, starts)
    return res


def evaluate(cases: list[Case], config: AgentConfig | None = None, model: str | None = None,
             keep: Path | None = None) -> list[CaseResult]:
    """Every case replayed; replay outputs go under `keep` (else a temporary folder)."""
    results = []
    with tempfile.TemporaryDirectory(prefix="edge-agent-eval-") as tmp:
        root = keep or Path(tmp)
        for case in cases:
            results.append(evaluate_case(case, root / case.name, config, model))
    return results


def evaluate_rtsp(cases: list[Case], config: AgentConfig | None, model: str, concurrent: int,
                  keep: Path | None = None) -> list[CaseResult]:
    """Every case served over RTSP and analysed by the live agent, `concurrent` cameras at once
    (live.py); each result's cost is the agent's process CPU, shared by media seconds."""
    from ..detect.common import DetectorOptions
    from ..detect.registry import load_detector

    if concurrent < 1:
        raise EdgeAgentError(f"--concurrent must be at least 1, got {concurrent}")
    config = config or AgentConfig(site=Site(id="eval"), device=Device(id="eval"))
    detector = load_detector(model, DetectorOptions.from_config(config.detector))
    results = []
    for p in play(cases, config, detector, model, concurrent, DEFAULT_START):
        res = case_result(p.case, p.events, p.live.analysed, duration(p.case), p.cpu_s, p.scorer)
        res.live, res.tiles, res.detect_s = p.live, p.tiles, p.detect_s
        if p.live.error:
            res.reasons.insert(0, f"no stream: {p.live.error}")
        if keep is not None:
            (keep / p.case.name).mkdir(parents=True, exist_ok=True)
            (keep / p.case.name / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in p.events))
        results.append(res)
    return results


def pct(found: int, total: int) -> str:
    return f"{100 * found / total:.0f}% ({found}/{total})" if total else "-"


def summary(results: list[CaseResult]) -> dict[str, Any]:
    """The figures the README table shows, as plain data (also what --json writes)."""
    visits, frames = Tally(), Tally()
    for r in results:
        visits.merge(r.visits)
        frames.merge(r.per_frame)
    empty_h = sum(r.media_s for r in results if r.empty) / 3600
    false = sum(r.alarms for r in results if r.empty)
    n_frames = sum(r.frames for r in results)
    wall, media = sum(r.wall_s for r in results), sum(r.media_s for r in results)
    return {
        "cases": len(results), "passed": sum(r.passed for r in results),
        "failed_required": [r.name for r in results if not r.passed and not r.known_miss],
        "known_miss_failing": [r.name for r in results if not r.passed and r.known_miss],
        "known_miss_passing": [r.name for r in results if r.passed and r.known_miss],
        "recall_visits": visits.as_dict(), "recall_frames": frames.as_dict(),
        "false_alarms": false, "empty_hours": round(empty_h, 4),
        "false_alarms_per_camera_hour": round(false / empty_h, 1) if empty_h else None,
        "ms_per_frame": round(1000 * wall / n_frames, 1) if n_frames else None,
        "ms_per_camera_second": round(1000 * wall / media, 1) if media else None,
        "frames": n_frames, "tiles": sum(r.tiles for r in results),
        "detector_images_per_camera_second": round((n_frames + sum(r.tiles for r in results)) / media, 2)
        if media else None,
        "detector_ms_per_camera_second": round(1000 * sum(r.detect_s for r in results) / media, 1) if media else None,
        "per_case": {r.name: {"status": r.status, "reasons": r.reasons, "alarms": r.alarms,
                              "recall_frames": r.per_frame.as_dict(), **_live_dict(r.live)} for r in results},
    }


def _live_dict(cam: LiveCamera | None) -> dict[str, Any]:
    if cam is None:
        return {}
    return {"rtsp": {"decode": sorted(cam.decode), "gop_s": cam.gop_s, "played_s": round(cam.played_s, 2),
                     "analysed": cam.analysed, "replaced": cam.replaced, "max_level": cam.max_level,
                     "analysis_degraded": cam.degraded}}


def live_lines(results: list[CaseResult]) -> list[str]:
    """Per camera of an RTSP run: decode modes seen, GOP, frames replaced, the policy's level."""
    cams = [r.live for r in results if r.live is not None]
    if not cams:
        return []
    lines = [f"{'camera (rtsp)':<24}{'decode':>16}{'gop s':>7}{'played s':>9}{'analysed':>9}{'replaced':>9}"
             f"{'max level':>10}{'degraded':>9}"]
    for c in cams:
        lines.append(f"{c.camera:<24}{'+'.join(sorted(c.decode)) or '-':>16}{c.gop_s or '-':>7}{c.played_s:>9.1f}"
                     f"{c.analysed:>9}{c.replaced:>9}{c.max_level:>10}{c.degraded:>9}")
    top = max(c.max_level for c in cams)
    lines.append(f"overload policy: max level {top} (shed: {', '.join(SHED_ORDER[:top]) or 'nothing'}"
                 f"{', fps lowered' if top > len(SHED_ORDER) else ''}); frames replaced "
                 f"{sum(c.replaced for c in cams)} of {sum(c.analysed + c.replaced for c in cams)}; "
                 f"cameras that ran keyframe-only: {sum('keyframes' in c.decode for c in cams)} of {len(cams)}")
    return lines


def format_report(results: list[CaseResult], title: str, mode: str = REPLAY_MODE) -> list[str]:
    s = summary(results)
    lines = [f"== {title}", f"mode: {mode}"]
    for r in results:
        note = f"  [known_miss: {r.known_miss}]" if r.known_miss else ""
        lines.append(f"{r.status:<11} {r.name}{note}")
        lines += [f"    {why}" for why in r.reasons]
    lines.append(f"{'size (px)':<26}" + "".join(f"{b:>16}" for b in BUCKETS))
    for key, label in (("recall_visits", "recall per visit (alarm)"), ("recall_frames", "recall per frame (IoU>=.3)")):
        lines.append(f"{label:<26}" + "".join(f"{pct(*s[key].get(b, [0, 0])):>16}" for b in BUCKETS))
    fa = s["false_alarms_per_camera_hour"]
    lines.append(f"false alarms on empty cases: {s['false_alarms']} in {s['empty_hours'] * 60:.1f} camera-minutes"
                 + (f" = {fa} per camera-hour" if fa is not None else ""))
    what = "process CPU, shared by media seconds" if any(r.live for r in results) else "wall"
    lines.append(f"cost: {s['ms_per_frame']} ms per analysed frame, {s['ms_per_camera_second']} ms per camera-second "
                 f"(decode + detect + pipeline, {what}, this machine)")
    lines.append(f"detector: {s['frames']} frames + {s['tiles']} tiles = {s['detector_images_per_camera_second']} "
                 f"images and {s['detector_ms_per_camera_second']} ms per camera-second")
    lines += live_lines(results)
    lines.append(f"{s['passed']}/{s['cases']} passed; required failing: {len(s['failed_required'])}; "
                 f"known misses: {len(s['known_miss_failing'])}")
    return lines


def cli_eval(args) -> int:
    from ..config.loader import load_config

    config = load_config(args.config) if args.config else None
    if args.min_score is not None:
        config = config or AgentConfig(site=Site(id="eval"), device=Device(id="eval"))
        config = config.model_copy(update={"detector": config.detector.model_copy(update={"min_score": args.min_score})})
    cases = load_cases(args.paths)
    model = args.model or (config.detector.model if config else None)
    if model is None:
        from ..detect.registry import Registry

        model = Registry().default  # the model replay takes when nothing names one
    keep = Path(args.out) if args.out else None
    if args.rtsp:
        results = evaluate_rtsp(cases, config, model, args.concurrent, keep)
        tiles = config.detector.tiles if config else "auto"
        mode = (f"rtsp (live agent over a GStreamer RTSP server, {args.concurrent} cameras at once, keyframe-only "
                f"decode of quiet cameras, overload policy on, tiles {tiles})")
    else:
        results, mode = evaluate(cases, config, model, keep), REPLAY_MODE
    print("\n".join(format_report(results, f"{len(cases)} cases, model {model}", mode)))
    if args.json:
        Path(args.json).write_text(json.dumps({"model": model, "mode": mode, **summary(results)}, indent=1))
    return 1 if summary(results)["failed_required"] else 0
