"""Both Dockerfiles read the way a builder reads them: every instruction known, every ARG declared
where it is used, every base image pinned to a release. Dockerfile.jetson cannot be built here (no
arm64, no L4T base); its Python steps are built on x86 by tests/integration/test_image.py."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KNOWN = {"FROM", "ARG", "ENV", "RUN", "COPY", "ADD", "WORKDIR", "VOLUME", "USER", "HEALTHCHECK", "ENTRYPOINT",
         "CMD", "LABEL", "STOPSIGNAL", "EXPOSE", "SHELL", "ONBUILD"}
VAR = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")


@dataclass
class Instruction:
    line: int
    keyword: str
    args: str


def parse(path: Path) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped, as the builder does."""
    out: list[Instruction] = []
    pending: tuple[int, str] | None = None
    for no, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # a comment inside a continued RUN is dropped too
        start, text = pending or (no, "")
        text += " " + line.rstrip("\\").strip()
        if line.endswith("\\"):
            pending = (start, text)
            continue
        pending = None
        keyword, _, args = text.strip().partition(" ")
        out.append(Instruction(start, keyword.upper(), args.strip()))
    assert pending is None, f"{path.name}: file ends inside a continued instruction"
    return out


def problems(path: Path) -> list[str]:
    found: list[str] = []
    instructions = parse(path)
    declared_anywhere = {re.split(r"[= ]", i.args)[0] for i in instructions if i.keyword == "ARG"}
    global_args: dict[str, str] = {}
    stages: set[str] = set()
    scope: set[str] | None = None  # None before the first FROM
    for ins in instructions:
        where = f"{path.name}:{ins.line}"
        if ins.keyword not in KNOWN:
            found.append(f"{where}: unknown instruction {ins.keyword}")
            continue
        if ins.keyword == "ARG":
            name, _, default = ins.args.partition("=")
            if scope is None:
                global_args[name] = default.strip('"')
            else:
                scope.add(name)
            continue
        if ins.keyword == "FROM":
            words = ins.args.split()
            for var in VAR.findall(words[0]):
                if var not in global_args:
                    found.append(f"{where}: FROM uses ${var}, not an ARG declared before the first FROM")
            image = VAR.sub(lambda m: global_args.get(m.group(1), ""), words[0]).replace("{", "").replace("}", "")
            if image not in stages and not pinned(image):
                found.append(f"{where}: base image {image!r} is not pinned to a release tag or digest")
            if len(words) == 3 and words[1].upper() == "AS":
                stages.add(words[2])
            scope = set()
            continue
        assert scope is not None, f"{where}: {ins.keyword} before FROM"
        if ins.keyword == "ENV":
            scope.update(re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=", ins.args))
        for var in VAR.findall(ins.args):
            if var in declared_anywhere and var not in scope:
                found.append(f"{where}: ${var} is used but not declared (ARG) in this stage")
    return found


def pinned(image: str) -> bool:
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag != "latest" and any(c.isdigit() for c in tag)


@pytest.mark.parametrize("name", ["Dockerfile.x86", "Dockerfile.jetson"])
def test_dockerfile_reads_cleanly(name):
    assert problems(ROOT / name) == []


def test_the_checks_see_each_kind_of_mistake(tmp_path):
    bad = tmp_path / "Dockerfile.bad"
    bad.write_text("ARG BASE=debian:latest\nFROM ${BASE}\nARG TAG=1\nFROM debian:12\nRUN echo $TAG\nFORM x\n"
                   "FROM ${OTHER}\n")
    found = problems(bad)
    assert any(":2: base image 'debian:latest' is not pinned" in p for p in found)
    assert any(":5: $TAG is used but not declared" in p for p in found)
    assert any(":6: unknown instruction FORM" in p for p in found)
    assert any(":7: FROM uses $OTHER" in p for p in found)


def test_jetson_image_is_for_jetpack_6_and_refuses_jetpack_5():
    instructions = parse(ROOT / "Dockerfile.jetson")
    assert re.search(r"l4t-jetpack:r36\.\d", next(i.args for i in instructions if i.keyword == "ARG" and i.args.startswith("BASE=")).replace("${L4T_VERSION}", "r36.4.0"))
    check = next(i.args for i in instructions if i.keyword == "RUN" and "L4T_VERSION" in i.args)
    for version, ok in (("r36.4.0", True), ("r36.3.0", True), ("r35.4.1", False), ("r32.7.1", False)):
        res = subprocess.run(["sh", "-c", check], env={"L4T_VERSION": version}, capture_output=True, text=True)
        assert (res.returncode == 0) == ok, (version, res.stderr)
        if version.startswith("r35"):
            assert "Python 3.8" in res.stderr and "unsupported" in res.stderr
    volumes = next(i.args for i in instructions if i.keyword == "VOLUME")
    assert "/var/cache/edge-agent/trt" in volumes  # TensorRT engines survive a new image
