"""Cross-field checks of a zone file that pydantic cannot do alone: unique names across zones and
lines, labels the model knows, exclusions that miss or swallow their zone. Every problem is reported
as `file:line: key: what`, like the loader's.
"""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import TypeAdapter, ValidationError

from .messages import YamlDoc, items_in
from .models import Outline


def check_zone_file(doc: YamlDoc, class_names: list[str] | None, model: str) -> list[str]:
    problems: list[str] = []
    first: dict[str, tuple[str, int]] = {}  # zones and lines share one name space: an event's `zone`
    known = set(class_names or [])
    for section in ("zones", "lines"):
        kind = section[:-1]
        for i, raw in items_in(doc.data, section):
            name = raw.get("name")
            if isinstance(name, str) and name in first:
                line = doc.line((first[name][0], first[name][1], "name"))
                problems.append(doc.problem((section, i, "name"), f"{kind} name {name!r} is used twice (first at "
                                            f"line {line}); names must be unique within a camera, zones and "
                                            "lines together"))
            elif isinstance(name, str):
                first[name] = (section, i)
            labels = raw.get("labels")
            for j, label in enumerate(labels if isinstance(labels, list) else []):
                if known and isinstance(label, str) and label not in known:
                    problems.append(doc.problem((section, i, "labels", j),
                                                _unknown_label(label, class_names or [], model)))
            if section == "zones":
                problems += _check_exclusions(doc, i, raw)
    return problems


def _check_exclusions(doc: YamlDoc, i: int, raw: dict) -> list[str]:
    """Exclusions that miss their zone or swallow it are almost always a typing mistake."""
    from shapely.geometry import Polygon

    area = _outline(raw.get("polygon"))
    excludes = raw.get("exclude")
    if area is None or not isinstance(excludes, list):
        return []  # a bad polygon is reported with its line by validation
    problems: list[str] = []
    zone = Polygon(area)
    for k, points in enumerate(excludes):
        ex = _outline(points)
        if ex is None:
            continue
        if Polygon(ex).intersection(zone).area <= 0:
            problems.append(doc.problem(("zones", i, "exclude", k), "this exclusion does not overlap its zone's "
                                        "polygon, so it has no effect (x and y swapped?)"))
        elif Polygon(ex).covers(zone):
            problems.append(doc.problem(("zones", i, "exclude", k), "this exclusion covers the whole zone, so "
                                        "the zone can never alarm"))
    return problems


_OUTLINE: TypeAdapter[list] = TypeAdapter(Outline)


def _outline(value: Any) -> list | None:
    try:
        return _OUTLINE.validate_python(value)
    except ValidationError:
        return None


def _unknown_label(label: str, names: list[str], model: str) -> str:
    close = difflib.get_close_matches(label, names, n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    shown = ", ".join(names[:12]) + (f", ... ({len(names)} in all)" if len(names) > 12 else "")
    return f"{label!r} is not a class of model {model}; {hint}known labels: {shown}"
