"""JSON Schemas of the config files and of events: `edge-agent schema events|zones|cameras|patrol`.

All four are also committed under docs/schemas/ (event.schema.json for central command's
integrators; the config ones so editors (the YAML language
server, via the `# yaml-language-server: $schema=...` line at the top of a file) complete keys and
flag mistakes while typing. Regenerate them after changing config/models.py with
`python -m edge_agent.admin.schema --write`; a unit test fails when they are stale.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable

from ..config.models import AgentConfig, ZoneFile

DRAFT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "docs" / "schemas"


def _with_header(schema: dict[str, Any], title: str, description: str) -> dict[str, Any]:
    return {"$schema": DRAFT, "title": title, "description": description, **{
        k: v for k, v in schema.items() if k not in ("title", "description")}}


def zones_schema() -> dict[str, Any]:
    return _with_header(ZoneFile.model_json_schema(), "edge-agent zone file",
                        "configs/zones/<camera>.yaml: the geofenced zones of one camera.")


def cameras_schema() -> dict[str, Any]:
    return _with_header(AgentConfig.model_json_schema(), "edge-agent cameras file",
                        "configs/cameras.yaml: site, device, detector, alarms, MQTT and cameras.")


def events_schema() -> dict[str, Any]:
    from ..alarms.event import event_json_schema

    return _with_header(event_json_schema(), "edge-agent event", "One phase of an alarm, camera or patrol event.")


def patrol_schema() -> dict[str, Any]:
    from ..patrol.points import patrol_json_schema

    return _with_header(patrol_json_schema(), "edge-agent patrol points file", "configs/patrol_points.yaml.")


def inventory_schema() -> dict[str, Any]:
    from ..ops.inventory import inventory_json_schema

    return _with_header(inventory_json_schema(), "edge-agent inventory",
                        "The retained <prefix>/<site>/<device>/inventory message: cameras, zones, patrol points.")


SCHEMAS: dict[str, Callable[[], dict[str, Any]]] = {
    "events": events_schema,
    "zones": zones_schema,
    "cameras": cameras_schema,
    "patrol": patrol_schema,
    "inventory": inventory_schema,
}
# schema -> docs/schemas/<file>.schema.json (an event document holds one event)
COMMITTED = {"zones": "zones", "cameras": "cameras", "patrol": "patrol", "events": "event", "inventory": "inventory"}


def render(schema: dict[str, Any]) -> str:
    """Stable text in the models' field order, which reads like the YAML files."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write_schemas(folder: Path = SCHEMA_DIR) -> list[Path]:
    """Write the committed schemas; returns the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, file in COMMITTED.items():
        path = folder / f"{file}.schema.json"
        path.write_text(render(SCHEMAS[name]()), encoding="utf-8")
        out.append(path)
    return out


def cli_schema(args: argparse.Namespace) -> int:
    """Print one JSON Schema to stdout."""
    sys.stdout.write(render(SCHEMAS[args.what]()))
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        for written in write_schemas():
            print(written)
    else:
        print("usage: python -m edge_agent.admin.schema --write", file=sys.stderr)
        sys.exit(2)
