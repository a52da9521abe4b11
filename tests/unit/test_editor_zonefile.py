"""The editor's save: a round trip through ruamel keeps what the technician wrote; the loader
decides what is valid; a backup is kept; a file changed since it was read is not overwritten."""

from __future__ import annotations

import yaml

from edge_agent.config.loader import COCO80
from edge_agent.editor.zonefile import ZoneFileStore, merged_text, version_of

FILE = """\
# yaml-language-server: $schema=../../docs/schemas/zones.schema.json
# the camera over the level crossing
zones:
  - name: track   # renamed by the page below
    kind: rail
    polygon:
      - [0.1, 0.5]
      - [0.9, 0.5]    # the far rail
      - [0.9, 0.9]
    labels: [person]
    dwell_s: 3.0
  - name: quay
    kind: water
    polygon: [[0.0, 0.0], [0.2, 0.0], [0.2, 0.2]]
    labels: ["boat"]
"""


def test_comments_order_flow_style_and_indent_survive_and_points_get_four_decimals():
    doc = yaml.safe_load(FILE)
    doc["zones"][0].update(name="track-bed", _was="track")
    doc["zones"][0]["polygon"][0] = [0.123456789, 0.5]
    doc["zones"][1]["polygon"].append([0.0, 0.2])
    doc["masks"] = [[[0.5, 0.5], [0.6, 0.5], [0.6, 0.6]]]
    doc["zones"][0]["exclude"] = [[[0.2, 0.6], [0.3, 0.6], [0.3333333, 0.7]]]
    out = merged_text(FILE, doc)
    assert out.startswith("# yaml-language-server: $schema=../../docs/schemas/zones.schema.json\n# the camera")
    assert "  - name: track-bed" in out and "# renamed by the page below" in out
    assert "      - [0.1235, 0.5]\n      - [0.9, 0.5]    # the far rail\n" in out
    assert "    dwell_s: 3.0\n" in out  # unchanged values keep their spelling
    assert "    polygon: [[0.0, 0.0], [0.2, 0.0], [0.2, 0.2], [0.0, 0.2]]\n" in out
    assert 'labels: ["boat"]' in out
    assert "masks:\n  - [[0.5, 0.5], [0.6, 0.5], [0.6, 0.6]]\n" in out  # a polygon per line, as example.yaml
    assert "    exclude:\n      - [[0.2, 0.6], [0.3, 0.6], [0.3333, 0.7]]\n" in out


def test_a_deleted_zone_takes_its_comments_and_the_next_keeps_its_own():
    doc = yaml.safe_load(FILE)
    del doc["zones"][0]
    out = merged_text(FILE, doc)
    assert "far rail" not in out and "renamed" not in out
    assert [z["name"] for z in yaml.safe_load(out)["zones"]] == ["quay"]


def test_save_validates_with_the_loader_keeps_a_backup_and_refuses_a_stale_version(tmp_path):
    path = tmp_path / "cam.yaml"
    path.write_text(FILE)
    store = ZoneFileStore(COCO80, "yolov3-tiny")
    doc = yaml.safe_load(FILE)
    doc["zones"][0]["polygon"] = [[0.1, 0.1], [0.5, 0.5], [0.5, 0.1], [0.1, 0.5]]  # crosses itself
    refused = store.save(path, version_of(FILE), doc)
    assert not refused.saved and path.read_text() == FILE
    assert len(refused.problems) == 1 and refused.problems[0].startswith(f"{path}:6: zones[0].polygon: ")
    assert "crosses itself" in refused.problems[0]

    doc["zones"][0]["polygon"] = [[0.1, 0.1], [0.5, 0.1], [0.5, 0.5]]
    saved = store.save(path, version_of(FILE), doc)
    assert saved.saved and saved.version == version_of(path.read_text())
    assert (tmp_path / "cam.yaml.bak").read_text() == FILE
    assert yaml.safe_load(path.read_text())["zones"][0]["polygon"] == [[0.1, 0.1], [0.5, 0.1], [0.5, 0.5]]

    again = store.save(path, version_of(FILE), yaml.safe_load(FILE))  # a second tab, loaded before the save
    assert again.conflict and not again.saved and again.version == saved.version
    assert "changed since" in again.problems[0]


def test_an_invalid_file_still_opens_with_its_problems(tmp_path):
    path = tmp_path / "cam.yaml"
    path.write_text(FILE.replace("kind: water", "kind: lake"))
    loaded = ZoneFileStore(COCO80, "yolov3-tiny").read(path)
    assert loaded.data["zones"][1]["kind"] == "lake"
    assert len(loaded.problems) == 1 and f"{path}:13: zones[1].kind" in loaded.problems[0]
