"""A zone file as the editor reads and writes it: the technician's comments, key order and flow
style survive a save (ruamel.yaml round trip), the candidate is validated by the one config loader
before anything is written, the previous file is kept as `<file>.bak`, and a file changed since the
page loaded it is never overwritten (the page sends the version it started from).

The page sends the whole document as it wants it; it is merged into the file's own node tree
rather than dumped afresh, so only what changed is written anew.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.util import load_yaml_guess_indent

from ..config.loader import collect_zones

DECIMALS = 4  # 1/10000 of the picture: a tenth of a pixel at 1080p, finer than a click
GEOMETRY = ("polygon", "points", "exclude", "masks")
ORIGINAL = "_was"  # the page marks a renamed zone or line with its name in the file


@dataclass
class Loaded:
    text: str
    version: str
    data: dict[str, Any]
    problems: list[str] = field(default_factory=list)


@dataclass
class Saved:
    saved: bool
    version: str
    problems: list[str] = field(default_factory=list)
    conflict: bool = False


def version_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read(path: Path, class_names: list[str] | None, model: str) -> Loaded:
    """The file, its version and its problems (an invalid file still opens, to be fixed in the page)."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    problems = collect_zones(path, class_names, model)[1] if path.exists() else []
    try:
        data = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError:
        data = None  # the loader's problem says where
    return Loaded(text, version_of(text), data if isinstance(data, dict) else {}, problems)


def rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, DECIMALS)
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def merged_text(old_text: str, new: dict[str, Any]) -> str:
    """`old_text` with its document changed to `new`, keeping comments, order and style."""
    rt = YAML()
    rt.preserve_quotes = True
    rt.width = 4096  # a long polygon stays on its lines
    doc: Any = None
    if old_text.strip():
        try:
            _, indent, offset = load_yaml_guess_indent(old_text)
            rt.indent(mapping=2 if offset else (indent or 2), sequence=indent or 2, offset=offset or 0)
            doc = rt.load(old_text)
        except Exception:  # unreadable YAML: written afresh (the page showed why it was broken)
            doc = None
    new = {k: rounded(v) if k in GEOMETRY else v for k, v in new.items()}
    out = io.StringIO()
    rt.dump(_merge(doc, new) if isinstance(doc, CommentedMap) else _fresh(new), out)
    return out.getvalue()


def _merge(old: Any, new: Any) -> Any:
    if isinstance(new, dict):
        if not isinstance(old, CommentedMap):
            return _fresh(new)
        for key in [k for k in old if k not in new]:
            del old[key]
        for key, value in new.items():
            value = rounded(value) if key in GEOMETRY else value
            old[key] = _merge(old[key], value) if key in old else _fresh(value)
        return old
    if isinstance(new, list):
        return _merge_list(old, new) if isinstance(old, CommentedSeq) else _fresh(new)
    same = old == new and isinstance(old, bool) == isinstance(new, bool)
    return old if same else new  # an unchanged value keeps its spelling (3.0 stays 3.0, quotes stay)


def _merge_list(old: CommentedSeq, new: list[Any]) -> CommentedSeq:
    """Named items (zones, lines) follow their name, so a deleted zone takes its comments along and
    the next keeps its own; other items go by position."""
    by_name = {item.get("name"): item for item in old if isinstance(item, CommentedMap)}
    items = []
    for i, value in enumerate(new):
        if isinstance(value, dict) and "name" in value:
            value = dict(value)
            was = by_name.get(value.pop(ORIGINAL, value["name"]))
            items.append(_merge(was, value) if was is not None else _fresh(value))
        else:
            items.append(_merge(old[i], value) if i < len(old) else _fresh_like(value, old))
    kept = {id(item) for item in items}
    for i in reversed(range(len(old))):
        if id(old[i]) not in kept:
            del old[i]
    for i, item in enumerate(items):
        if i < len(old):
            if old[i] is not item:
                old[i] = item
        else:
            old.append(item)
    return old


def _fresh(value: Any) -> Any:
    """A new node: lists of plain values (a point, labels) in flow style `[a, b]`, the rest in
    blocks; but in a list of polygons (exclusions, masks) each polygon is one flow line
    `- [[x, y], ...]`, as configs/zones/example.yaml writes them."""
    if isinstance(value, dict):
        return CommentedMap((k, _fresh(v)) for k, v in value.items() if k != ORIGINAL)
    if isinstance(value, list):
        seq = CommentedSeq(_fresh(v) for v in value)
        polygons = value and all(isinstance(v, list) and v and all(isinstance(p, list) for p in v) for v in value)
        for item in seq if polygons else ():
            item.fa.set_flow_style()
        if all(not isinstance(v, (dict, list)) for v in value):
            seq.fa.set_flow_style()
        return seq
    return value


def _fresh_like(value: Any, siblings: CommentedSeq) -> Any:
    node = _fresh(value)
    if isinstance(node, CommentedSeq) and siblings and isinstance(siblings[0], CommentedSeq):
        if siblings[0].fa.flow_style():
            node.fa.set_flow_style()
        else:
            node.fa.set_block_style()
    return node


class ZoneFileStore:
    """Saves of one folder's zone files, one at a time (two tabs saving at once: the second is told)."""

    def __init__(self, class_names: list[str] | None, model: str) -> None:
        self.class_names = class_names
        self.model = model
        self._lock = threading.Lock()

    def read(self, path: Path) -> Loaded:
        return read(path, self.class_names, self.model)

    def validate(self, path: Path, text: str) -> list[str]:
        """The loader's problems with `text` as `path`, named by `path` and its lines."""
        probe = path.with_name(f".{path.name}.{os.getpid()}.editing")
        probe.write_text(text, encoding="utf-8")
        try:
            return [p.replace(str(probe), str(path)) for p in collect_zones(probe, self.class_names, self.model)[1]]
        finally:
            probe.unlink(missing_ok=True)

    def save(self, path: Path, base_version: str, doc: dict[str, Any]) -> Saved:
        with self._lock:
            current = path.read_text(encoding="utf-8") if path.exists() else ""
            if version_of(current) != base_version:
                return Saved(False, version_of(current), [f"{path}: the file changed since this page loaded it "
                                                          "(another tab or someone else saved); reload the page"],
                             conflict=True)
            text = merged_text(current, doc)
            problems = self.validate(path, text)
            if problems:
                return Saved(False, base_version, problems)
            if path.exists():
                path.with_name(path.name + ".bak").write_text(current, encoding="utf-8")
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)  # the agent or a reload never reads half a file
            return Saved(True, version_of(text))
