"""`edge-agent zones render` with the detector's tiles: the zones drawn by config/render.py, and
the tiles the camera's `tiles` setting lays over them for the model's input size."""

from __future__ import annotations

import argparse

from ..config.models import Tiles, ZoneFile
from ..config.render import cli_zones as render_zones
from ..detect.tiles import plan


def _setting_and_model(args: argparse.Namespace) -> tuple[Tiles, str]:
    """The camera's tiles setting and model with --camera (its config's), else `auto` and the
    default model; --model names another."""
    from ..detect.registry import Registry

    setting: Tiles = "auto"
    model = None
    if getattr(args, "camera", None):
        from ..config.loader import load_config

        cfg = load_config(args.config)
        cam = next((c for c in cfg.cameras if c.id == args.camera), None)
        setting = (cam.tiles if cam else None) or cfg.detector.tiles
        model = cfg.detector.model
    return setting, args.model or model or Registry().default


def cli_zones(args: argparse.Namespace) -> int:
    from ..detect.registry import input_size

    setting, model = _setting_and_model(args)
    size = input_size(model)

    def tiles_for(rules: ZoneFile, frame: tuple[int, int]) -> list[tuple[int, int, int, int]]:
        return plan(setting, rules, frame, size)

    return render_zones(args, tiles_for)
