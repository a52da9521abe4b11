"""The edge never depends on the centre: the pipeline modules import neither `edge_agent.central`
nor `edge_agent.web` (nor their libraries), so the edge image runs without the `[central]` extra;
and the shared web layer does not know the console (the zone editor reuses it)."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).parents[2] / "edge_agent"
CENTRE = ("edge_agent.central", "edge_agent.web", "edge_agent.editor")  # the editor is a web page too
CENTRE_LIBS = ("fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "psycopg", "argon2", "jinja2")
CLI_ENTRY = {"cli.py"}  # argument parsing names the handler modules as strings only


def imports(path: Path) -> set[str]:
    """Absolute names of every module `path` imports (relative imports resolved)."""
    module = ".".join(path.relative_to(PKG.parent).with_suffix("").parts)
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)] if node.level else []
            name = ".".join([*base, node.module] if node.module else base)
            out.add(name)
            out |= {f"{name}.{a.name}" for a in node.names}
    return out


def test_edge_modules_never_import_the_centre():
    edge = [p for p in PKG.rglob("*.py") if p.relative_to(PKG).parts[0] not in ("central", "web", "editor")
            and p.relative_to(PKG).as_posix() not in CLI_ENTRY | {"config/central.py"}]
    assert len(edge) > 30
    bad = {p.relative_to(PKG).as_posix(): sorted(n for n in imports(p) if n.startswith(CENTRE + CENTRE_LIBS))
           for p in edge}
    assert {k: v for k, v in bad.items() if v} == {}


def test_web_layer_does_not_know_the_console():
    bad = {p.name: sorted(n for n in imports(p) if n.startswith("edge_agent.central")) for p in (PKG / "web").rglob("*.py")}
    assert {k: v for k, v in bad.items() if v} == {}
