"""Evaluation cases: a clip, its zones and its ground truth, from a `*.expected.yaml` file.

The file is the footage tests' own (scripts/make_footage.py writes it from the scene geometry,
or from hand labels for real footage). `truth.objects.<name>.boxes` lists, per rendered frame,
`[t, x0, y0, x1, y1]` (media seconds, frame fractions) where the object was drawn; cases with
boxes take part in size recall. `known_miss: <why>` marks a case the product still fails.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import EdgeAgentError

SUFFIX = ".expected.yaml"


@dataclass
class TruthObject:
    """One drawn (or hand-labelled) object: its label, zone visits and per-frame boxes."""

    name: str
    label: str
    zones: dict[str, Any]
    times: list[float] = field(default_factory=list)
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)

    def box_at(self, t: float, tolerance: float) -> tuple[float, float, float, float] | None:
        """The drawn box nearest in time to `t` (normalised xyxy), None when none within tolerance."""
        if not self.times:
            return None
        i = bisect.bisect_left(self.times, t)
        near = [j for j in (i - 1, i) if 0 <= j < len(self.times)]
        j = min(near, key=lambda k: abs(self.times[k] - t))
        return self.boxes[j] if abs(self.times[j] - t) <= tolerance else None


@dataclass
class Case:
    path: Path
    spec: dict[str, Any]

    @property
    def name(self) -> str:
        return self.path.name.removesuffix(SUFFIX)

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def known_miss(self) -> str | None:
        return self.spec.get("known_miss")

    @property
    def frame_size(self) -> tuple[int, int]:
        video = self.spec["video"]
        return int(video["width"]), int(video["height"])

    @property
    def frame_tolerance(self) -> float:
        """Half a rendered frame: how far a sampled frame's time may be from a truth row."""
        return 0.5 / float(self.spec["video"].get("fps", 10)) + 1e-6

    @property
    def empty(self) -> bool:
        """No alarm expected at all: every alarm on it is a false alarm."""
        return all(list(e["count"]) == [0, 0] for e in self.spec["expect"])

    def objects(self) -> list[TruthObject]:
        result = []
        for name, obj in (self.spec.get("truth", {}).get("objects") or {}).items():
            rows = obj.get("boxes") or []
            result.append(TruthObject(name, obj["label"], obj.get("zones", {}),
                                      [float(r[0]) for r in rows], [tuple(map(float, r[1:5])) for r in rows]))
        return result


def _case_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(path.rglob(f"*{SUFFIX}"))
    if path.is_file() and path.name.endswith(SUFFIX):
        return [path]
    raise EdgeAgentError(f"{path}: neither a *{SUFFIX} case file nor a folder of them")


def load_cases(paths: list[str | Path]) -> list[Case]:
    """Every zone case under the given files and folders (patrol cases are not alarm cases)."""
    cases: list[Case] = []
    for raw in paths:
        for f in _case_files(Path(raw)):
            try:
                spec = yaml.safe_load(f.read_text())
            except (OSError, yaml.YAMLError) as exc:
                raise EdgeAgentError(f"{f}: cannot read the case ({exc})") from None
            if not isinstance(spec, dict) or "points" in spec:
                continue
            missing = [k for k in ("clip", "zones", "expect", "video") if k not in spec]
            if missing:
                raise EdgeAgentError(f"{f}: a case needs {', '.join(missing)}")
            cases.append(Case(f, spec))
    if not cases:
        raise EdgeAgentError(f"no *{SUFFIX} zone cases under {', '.join(map(str, paths))}")
    return cases
