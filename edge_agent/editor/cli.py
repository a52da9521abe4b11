"""`edge-agent zones edit [--config C] [--camera ID] [--listen 127.0.0.1:8090]`."""

from __future__ import annotations

import argparse
import logging
import threading
from pathlib import Path
from typing import Any, Callable

from ..config.loader import load_config
from ..errors import EdgeAgentError

try:
    from .server import LOOPBACK, Editor, EditorSetup
except ImportError as exc:  # the edge image leaves the web libraries out unless asked
    raise EdgeAgentError(f"the zone editor needs the [editor] extra ({exc.name} is missing): "
                         "pip install 'edge-agent[editor]'") from None

log = logging.getLogger("edge_agent.editor")


def split_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise EdgeAgentError(f"--listen {listen}: must be host:port, e.g. 127.0.0.1:8090")
    return host, int(port)


def lazy_detector(cfg: Any) -> Callable[[], Any]:
    """The local detector for "test" when no agent runs; loaded once, on first use (seconds)."""
    lock, held = threading.Lock(), []

    def get() -> Any:
        from ..detect.common import DetectorOptions
        from ..detect.registry import load_detector

        with lock:
            if not held:
                held.append(load_detector(cfg.detector.model, DetectorOptions.from_config(cfg.detector)))
            return held[0]

    return get


def build(config_path: str, listen: str) -> Editor:
    from ..detect.registry import zone_labels

    cfg = load_config(config_path)
    if not cfg.cameras:
        raise EdgeAgentError(f"{config_path}: cameras: no camera to edit zones for")
    host, _ = split_listen(listen)
    if host not in LOOPBACK and not cfg.editor.password_hash:
        raise EdgeAgentError(f"--listen {listen} is reachable from other machines: set editor.password_hash in "
                             f"{config_path} (an argon2 hash), or keep the loopback default and use an SSH tunnel")
    try:
        names = zone_labels(cfg.detector.model)
    except EdgeAgentError:
        names = None  # `edge-agent check` reports the model; labels are then free text
    return Editor(EditorSetup(Path(config_path), cfg, names, lazy_detector(cfg), host))


def cli_edit(args: argparse.Namespace) -> int:
    import uvicorn

    editor = build(args.config, args.listen)
    camera = args.camera or next(iter(editor.cameras))
    if camera not in editor.cameras:
        raise EdgeAgentError(f"{args.config}: no camera {camera!r}; cameras: {', '.join(editor.cameras)}")
    host, port = split_listen(args.listen)
    if host not in LOOPBACK:
        log.warning("zone editor listens on %s, reachable from other machines: log-in as `technician` required",
                    args.listen)
    print(f"zone editor: http://{args.listen}/edit/{camera} (Ctrl-C to stop)", flush=True)
    # proxy_headers off: X-Forwarded-For must not choose the address the log-in limiter counts.
    uvicorn.run(editor.web.app, host=host.strip("[]"), port=port, log_level="warning", proxy_headers=False)
    return 0
