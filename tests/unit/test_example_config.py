"""The full example config: copied as the README says it works, and it really holds every key."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

import yaml

from edge_agent.config.loader import load_all
from tests.fixtures.site import EXAMPLE

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "schemas" / "cameras.schema.json").read_text())
# `  # password_file: x` is a documented alternative to the key above it; `# tls:` a section left out
_COMMENTED_KEY = re.compile(r"^(\s*)# ?(\s*[a-z_]+:(\s.*)?)$")


def _paths(node: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """Every key path the schema allows: `mqtt.tls.ca_file`, `cameras[].location.lat`."""
    while "$ref" in node or "anyOf" in node:
        if "$ref" in node:
            node = SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[1]]
        else:
            node = next(n for n in node["anyOf"] if n.get("type") != "null")
    if node.get("type") == "array" and "items" in node:
        yield from _paths(node["items"], prefix + "[]")
    for key, sub in node.get("properties", {}).items():
        path = f"{prefix}.{key}" if prefix else key
        yield path
        yield from _paths(sub, path)


def _has(data: Any, path: str) -> bool:
    for part in path.split("."):
        many = part.endswith("[]")
        key = part.removesuffix("[]")
        if not isinstance(data, dict) or key not in data:
            return False
        data = data[key]
        if many:
            if not data:
                return False
            data = data[0]
    return True


def test_the_example_names_every_key_of_the_schema() -> None:
    uncommented = "\n".join(_COMMENTED_KEY.sub(r"\1\2", line) for line in EXAMPLE.read_text().splitlines())
    data = yaml.safe_load(uncommented)
    missing = [p for p in _paths(SCHEMA) if not _has(data, p)]
    assert not missing, f"configs/examples/cameras.full.yaml lacks {missing}"


def test_the_copied_example_loads_and_its_schema_comment_points_at_the_schema(example_site: Path) -> None:
    cfg, zones = load_all(example_site)
    assert cfg.cameras[0].password_env == "EDGE_CAM_QUAY_EAST" and "quay-east" in zones
    schema = example_site.read_text().splitlines()[0].split("$schema=", 1)[1]
    # the copy sits in configs/, as it would in the project
    assert (ROOT / "configs" / schema).resolve() == (ROOT / "docs/schemas/cameras.schema.json").resolve()
