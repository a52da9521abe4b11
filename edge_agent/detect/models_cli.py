"""`edge-agent models fetch|list|labels`: obtain and convert detector weights, and say what they detect."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ModelError
from .registry import Registry, class_names, load_detector


def _print_labels(args: argparse.Namespace, reg: Registry) -> int:
    """The class names a zone's `labels` may use: the model's own, one per line with its class id."""
    model = args.model
    if model is None and Path(args.config).is_file():
        from ..config.loader import load_config

        model = load_config(args.config).detector.model
    model = model or reg.default
    names = class_names(model, reg)
    if not names:  # .pt and .engine carry their names inside: load the model to read them
        from .common import DetectorOptions

        names = list(load_detector(model, DetectorOptions()).names)
    print(f"# {len(names)} labels of model {model}")
    for i, name in enumerate(names):
        print(f"{i:3d}  {name}")
    return 0


def cli_models(args: argparse.Namespace) -> int:
    """`edge-agent models fetch [names] [--all] [--force]` and `edge-agent models list`."""
    reg = Registry()
    if args.models_command == "labels":
        return _print_labels(args, reg)
    if args.models_command == "list":
        rows = [("model", "format", "status", "MB", "licence")]
        for name in reg.names:
            entry, path = reg.entry(name), reg.path_of(name)
            size = f"{path.stat().st_size / 1e6:.1f}" if path.exists() else "-"
            mark = " (default)" if name == reg.default else ""
            rows.append((name + mark, str(entry.get("format")), reg.status(name), size,
                         str(entry.get("licence", ""))))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for r in rows:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[4])
        print(f"model folder: {reg.model_dir}")
        return 0
    names = reg.names if args.all else (args.names or [reg.default])
    failed: list[str] = []
    for name in names:
        try:
            print(f"{name}: {reg.fetch(name, force=args.force)}")
        except ModelError as exc:
            if len(names) == 1:
                raise
            failed.append(f"{name}: {exc}")  # one broken entry should not block the others
    if failed:
        raise ModelError("\n".join(failed))
    return 0
