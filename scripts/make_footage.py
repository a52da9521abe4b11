#!/usr/bin/env python3
"""Render the deterministic test clips in tests/footage with their zones and expected alarms.

    .venv/bin/python scripts/make_footage.py                      # all clips into tests/footage
    .venv/bin/python scripts/make_footage.py --only rail_intrusion
    .venv/bin/python scripts/make_footage.py --size 1280x720 --fps 25 --out /tmp/x   # benchmark variant

Synthetic scenes are composited from the Scratch backgrounds and cut-outs in --media; the ground
truth comes from where the cut-outs were drawn (see scripts/footage/truth.py). vtest_restricted is
a cut of OpenCV's vtest.avi with hand-made labels (tests/footage/vtest_labels.yaml).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from edge_agent.config.models import Line

sys.path.insert(0, str(Path(__file__).resolve().parent))

from footage import bench, hard, patrol, vtest  # noqa: E402
from footage.check import check_clip, print_report  # noqa: E402
from footage.render import Encoder, SceneRender, Sprites, render_frames  # noqa: E402
from footage.scenes import Scene, scenes  # noqa: E402
from footage.truth import intrusion_expectation, line_expectation, object_truth, stationary_expectation  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCHEDULE_TZ = "Europe/Amsterdam"
NAMES = [*scenes(), "vtest_restricted", *patrol.NAMES, *hard.hard_scenes(), vtest.SMALL, bench.REFLECTIONS]


def dump_yaml(path: Path, data: dict[str, Any], header: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=110)
    path.write_text(f"# {header}\n{text}")


def render_scene(scene: Scene, media: Path, out: Path, width: int, height: int, fps: int,
                 model: str | None = None, crf: int | None = None) -> None:
    (width, height), fps = scene.size or (width, height), scene.fps or fps
    spec = SceneRender(media / scene.background, scene.crop_y, scene.duration, scene.actors, scene.seed,
                       scene.gain, scene.noise, scene.jitter_px, scene.effect, scene.foreground)
    enc = Encoder(out / f"{scene.name}.mp4", width, height, fps, crf or scene.crf, scene.bitrate_kbps)
    frames = []
    for img, truth in render_frames(spec, Sprites(media), width, height, fps):
        enc.write(img)
        frames.append(truth)
    enc.close()
    objects = object_truth(frames, scene.zones, fps, width / height, boxes=bool(scene.size))
    dump_yaml(out / "zones" / f"{scene.name}.yaml", {"zones": scene.zones},
              f"Zones of {scene.name}.mp4, written by scripts/make_footage.py")
    expect = []
    for zone in scene.zones:
        if zone.get("stationary_s"):
            expect.append(stationary_expectation(zone, objects, scene.facts["stopped_at"]))
        else:
            expect.append(intrusion_expectation(zone, objects, scene.extra_alarms_allowed))
    base = {"clip": f"{scene.name}.mp4", "zones": f"zones/{scene.name}.yaml", "fps": scene.detect_fps,
            "video": {"width": width, "height": height, "fps": fps, "frames": len(frames)}}
    only = not any(z.get("stationary_s") for z in scene.zones)  # a mooring boat may also raise intrusion
    truth: dict[str, Any] = {"objects": objects, **scene.facts}
    miss = {"known_miss": hard.KNOWN_MISS[scene.name]} if scene.name in hard.KNOWN_MISS else {}
    if scene.bitrate_kbps:
        base["video"]["bitrate_kbps"] = scene.bitrate_kbps
    dump_yaml(out / f"{scene.name}.expected.yaml",
              {**base, **miss, "expect": expect, "only_listed": only, "truth": truth},
              "Expected alarms, from the geometric ground truth of scripts/make_footage.py")
    print(f"{scene.name}: {len(frames)} frames {width}x{height}@{fps} "
          f"{(out / f'{scene.name}.mp4').stat().st_size / 1024:.0f} KiB; expect {expect}")
    if model and objects:
        boxes = {i: [(o.actor, o.label, o.box) for o in f.objects] for i, f in enumerate(frames)}
        print_report(scene.name, check_clip(out / f"{scene.name}.mp4", boxes, model, fps))
    if scene.name == "rail_intrusion":
        write_schedule_variants(scene, base, expect, objects, out)
        write_line_variants(base, frames, width / height, objects, out)


def write_schedule_variants(scene: Scene, base: dict[str, Any], expect: list, objects: dict, out: Path) -> None:
    """The rail_intrusion clip under a night-only zone: replayed at noon (0 alarms) and at 22:00 (1)."""
    zones = [{**z, "schedule": ["19:00-06:00"]} for z in scene.zones]
    dump_yaml(out / "zones" / "rail_schedule_night.yaml", {"zones": zones},
              "rail_intrusion.mp4's track bed, watched only at night (site time zone)")
    zfile = {"zones": "zones/rail_schedule_night.yaml", "timezone": SCHEDULE_TZ}
    noon = {**base, **zfile, "start": "2026-06-01T10:00:00Z"}  # 12:00 CEST: outside the window
    none = [{**e, "count": [0, 0]} for e in expect]
    for e in none:
        e.pop("first_alarm_within", None)
    dump_yaml(out / "rail_schedule_outside.expected.yaml",
              {**noon, "expect": none, "only_listed": True, "truth": {"objects": objects, "local_start": "12:00"}},
              "rail_intrusion.mp4 replayed at 12:00 local under a 19:00-06:00 schedule: no alarm")
    night = {**base, **zfile, "start": "2026-06-01T20:00:00Z"}  # 22:00 CEST: inside the window
    dump_yaml(out / "rail_schedule_inside.expected.yaml",
              {**night, "expect": expect, "only_listed": True, "truth": {"objects": objects, "local_start": "22:00"}},
              "rail_intrusion.mp4 replayed at 22:00 local under a 19:00-06:00 schedule: one alarm")


# The walker of rail_intrusion crosses x = 0.3 left to right near the bottom of the picture; the
# line is drawn bottom to top, so that crossing is `in` (from the line's left to its right).
GATE = {"name": "gate", "points": [[0.3, 0.98], [0.3, 0.6]], "labels": ["person"]}


def write_line_variants(base: dict[str, Any], frames: list, aspect: float, objects: dict, out: Path) -> None:
    """rail_intrusion.mp4 under a zone file with only a line: `in` gives one crossing, `out` none."""
    hysteresis = Line(**GATE).hysteresis  # the shipped default, as the replay applies it
    for direction in ("in", "out"):
        name = f"rail_line_{direction}"
        line = {**GATE, "direction": direction}
        dump_yaml(out / "zones" / f"{name}.yaml", {"lines": [line]},
                  f"rail_intrusion.mp4's walker and a line crossed left to right (direction {direction})")
        expect = [line_expectation(line, frames, aspect, hysteresis)]
        dump_yaml(out / f"{name}.expected.yaml",
                  {**base, "zones": f"zones/{name}.yaml", "expect": expect, "only_listed": True,
                   "truth": {"objects": objects}},
                  f"rail_intrusion.mp4 with a line `{direction}`: crossings from the drawn anchors' geometry")


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT, got {text!r}") from None
    if w % 2 or h % 2 or w < 64 or h < 64:
        raise argparse.ArgumentTypeError(f"size must be even and at least 64x64, got {text!r}")
    return w, h


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--media", type=Path, default=ROOT.parent / "shared" / "media")
    p.add_argument("--out", type=Path, default=ROOT / "tests" / "footage")
    p.add_argument("--only", action="append", choices=NAMES, help="render only this clip (repeatable)")
    p.add_argument("--size", type=parse_size, help="WIDTHxHEIGHT (default 640x360; vtest 640x480)")
    p.add_argument("--fps", type=int, help="frame rate (default 10)")
    p.add_argument("--crf", type=int, help="x264 CRF for every clip (default: the scene's, 28-30)")
    p.add_argument("--check", metavar="MODEL", help="run this detector over each clip and report hits")
    args = p.parse_args(argv)
    if not (args.media / "backgrounds").is_dir():
        p.error(f"--media {args.media}: no backgrounds/ folder (expected the shared media set)")
    fps = args.fps or 10
    hard_cases = hard.hard_scenes()
    for name in args.only or NAMES:
        if name == "vtest_restricted":
            vtest.render(args.media, args.out, args.size, fps, dump_yaml, args.crf)
        elif name == vtest.SMALL:  # hard case: the same hand labels, a small, short, camera-rate cut
            vtest.render(args.media, args.out / "hard", (384, 288), 10, dump_yaml, name=vtest.SMALL,
                         length_s=8.0, bitrate_kbps=1000)
        elif name == bench.REFLECTIONS:  # hard case: a cut of the capacity bench's water camera
            bench.render_reflections(args.out / "hard", dump_yaml)
        elif name in hard_cases:
            render_scene(hard_cases[name], args.media, args.out / "hard", 0, 0, 0, args.check)
        elif name in patrol.NAMES:  # patrol scenes: scripts/footage/patrol.py
            patrol.render(name, args.media, args.out, args.size, fps, dump_yaml)
        else:
            w, h = args.size or (640, 360)
            render_scene(scenes()[name], args.media, args.out, w, h, fps, args.check, args.crf)
    return 0


if __name__ == "__main__":
    sys.exit(main())
