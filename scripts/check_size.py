#!/usr/bin/env python3
"""Fail when a module of edge_agent/ passes 400 lines or a function passes 60: they ask to be split.

Run by scripts/test.sh beside the import contract (lint-imports); prints every offender.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def offenders(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
        if lines > MAX_MODULE_LINES:
            found.append(f"{path}: {lines} lines (module limit {MAX_MODULE_LINES})")
        for node in ast.walk(ast.parse(text, str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.append(f"{path}:{node.lineno}: function {node.name} is {length} lines "
                                 f"(limit {MAX_FUNCTION_LINES})")
    return found


def main() -> int:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "edge_agent")
    problems = offenders(root)
    for line in problems:
        print(line)
    print(f"check_size: {len(problems)} module(s) or function(s) too long under {root}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
