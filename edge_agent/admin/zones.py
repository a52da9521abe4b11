"""`edge-agent zones render` with the detector's tiles: the zones drawn by config/render.py, and
the tiles the camera's `tiles` setting lays over them for the model's input size."""

from __future__ import annotations

import argparse

from ..config.models import Tiles
from ..config.render import cli_zones as render_zones
from ..detect.tile_layout import camera_setting, planner


def _setting_and_model(args: argparse.Namespace) -> tuple[Tiles, str]:
    """The camera's tiles setting and model with --camera (its config's), else `auto` and the
    default model; --model names another."""
    from ..detect.registry import Registry

    setting: Tiles = "auto"
    model = None
    if getattr(args, "camera", None):
        from ..config.loader import load_config

        cfg = load_config(args.config)
        setting = camera_setting(cfg, args.camera)
        model = cfg.detector.model
    return setting, args.model or model or Registry().default


def cli_zones(args: argparse.Namespace) -> int:
    return render_zones(args, planner(*_setting_and_model(args)))
