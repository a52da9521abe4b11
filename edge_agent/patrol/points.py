"""configs/patrol_points.yaml: patrol points, teams, the badge roster and the site's badge secret.

Patrol areas live here rather than in the zone files: a point is where a team clocks in, not an
area where objects raise alarms. Each point names its camera; one file serves a whole site and
each box acts on the points of its own cameras (`PatrolFile.for_cameras`). The file is checked
like the zone files: every problem as `file:line: key: what`, all at once.

    points:
      - {id: PP001, name: "Dyke km 0.4", camera: dyke-01, team: T01,
         area: [[0.1, 0.6], [0.4, 0.6], [0.4, 1.0], [0.1, 1.0]],
         due: {interval: 4h, window: "06:00-22:00"}}
    roster:
      - {badge: 1001, team: T01, member: "A. Jansen", valid_until: 2027-12-31}
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field, PrivateAttr

from ..config.loader import by_line, load_doc
from ..config.messages import YamlDoc
from ..config.models import AgentConfig, Location, Outline, Strict, Window
from ..errors import ConfigError, EdgeAgentError
from .badge import MAX_BADGE

_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*(?:(\d+(?:\.\d+)?)\s*m)?\s*(?:(\d+(?:\.\d+)?)\s*s)?\s*$")
_ID = r"^[A-Za-z0-9_.-]+$"


def parse_duration(text: str | float | int) -> float:
    """Seconds from "4h", "90m", "1h30m", "45s" or a plain number of seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        match = _DURATION.match(str(text))
        if not match or not any(match.groups()):
            raise ValueError(f"{text!r} is not a duration; write it like 4h, 90m, 1h30m or 45s")
        h, m, s = (float(g) if g else 0.0 for g in match.groups())
        seconds = h * 3600 + m * 60 + s
    if seconds <= 0:
        raise ValueError(f"duration {text!r} must be longer than zero")
    return seconds


def _check_duration(value: str | float) -> str | float:
    parse_duration(value)
    return value


Duration = Annotated[str | float, AfterValidator(_check_duration), Field(examples=["4h", "90m", "1h30m"])]


class Due(Strict):
    interval: Duration = Field("4h", description="Longest time between two check-ins, e.g. 4h, 90m.")
    window: Window | None = Field(None, description='Local hours when the interval counts, e.g. "06:00-22:00"; '
                                  "absent = all day.")

    @property
    def interval_s(self) -> float:
        return parse_duration(self.interval)


class Point(Strict):
    id: str = Field(min_length=1, pattern=_ID, description="Unique, e.g. PP001; used in MQTT topics.")
    name: str = ""
    camera: str = Field(min_length=1, pattern=_ID, description="The camera that watches the point.")
    area: Outline = Field(description="Check-in area on that camera: [[x, y], ...] as fractions (0..1).")
    location: Location | None = None
    team: str = Field(min_length=1, description="The team that patrols this point.")
    due: Due | None = Field(None, description="Default: `defaults.due`.")
    presence_s: float | None = Field(None, gt=0, description="Dwell without a badge before patrol_presence.")
    enabled: bool = True


class Team(Strict):
    id: str = Field(min_length=1, pattern=_ID)
    name: str = ""


class Member(Strict):
    badge: int = Field(ge=0, le=MAX_BADGE, description="The number printed into the badge.")
    team: str = Field(min_length=1)
    member: str = Field(min_length=1, description="Name as it appears in check-in events.")
    valid_until: dt.date | None = Field(None, description="Last valid day (site time zone); absent = no expiry.")


class Defaults(Strict):
    due: Due = Field(default_factory=Due)
    presence_s: float = Field(10.0, gt=0, description="Seconds in the area without a badge: patrol_presence.")
    rearm_s: float = Field(600.0, ge=0, description="The same badge at the same point counts once in this time.")


class PatrolFile(Strict):
    badge_secret: str | None = Field(None, description="Prefer badge_secret_file or badge_secret_env.")
    badge_secret_env: str | None = Field(None, description="Environment variable holding the badge secret.")
    badge_secret_file: str | None = Field(None, description="File whose first line is the badge secret.")
    defaults: Defaults = Field(default_factory=Defaults)
    teams: list[Team] = Field(default_factory=list)
    points: list[Point] = Field(default_factory=list)
    roster: list[Member] = Field(default_factory=list)
    _path: Path | None = PrivateAttr(None)

    def due(self, point: Point) -> Due:
        return point.due or self.defaults.due

    def presence_s(self, point: Point) -> float:
        return point.presence_s or self.defaults.presence_s

    def for_cameras(self, cameras: set[str] | list[str]) -> list[Point]:
        """The enabled points this box watches."""
        return [p for p in self.points if p.enabled and p.camera in set(cameras)]

    def badge(self, number: int) -> Member | None:
        return next((m for m in self.roster if m.badge == number), None)


def patrol_json_schema() -> dict[str, Any]:
    return PatrolFile.model_json_schema()


# ---- cross-checks on the raw YAML, so they report even when other keys are wrong ----------------

def _dicts(doc: YamlDoc, key: str) -> list[tuple[int, dict]]:
    seq = doc.data.get(key) if isinstance(doc.data, dict) else None
    return [(i, x) for i, x in enumerate(seq) if isinstance(x, dict)] if isinstance(seq, list) else []


def _unique(doc: YamlDoc, section: str, key: str, what: str) -> list[str]:
    problems, first = [], {}
    for i, raw in _dicts(doc, section):
        value = raw.get(key)
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            continue
        if value in first:
            line = doc.line((section, first[value], key))
            problems.append(doc.problem((section, i, key), f"{what} {value!r} is used twice (first at line {line}); "
                                        f"{what}s must be unique"))
        else:
            first[value] = i
    return problems


def _check(doc: YamlDoc) -> list[str]:
    problems = _unique(doc, "points", "id", "point id") + _unique(doc, "roster", "badge", "badge number")
    problems += _unique(doc, "teams", "id", "team id")
    teams = {t["id"] for _, t in _dicts(doc, "teams") if isinstance(t.get("id"), str)}  # others: reported by validation
    if teams:
        for section in ("points", "roster"):
            for i, raw in _dicts(doc, section):
                team = raw.get("team")
                if isinstance(team, str) and team not in teams:
                    problems.append(doc.problem((section, i, "team"), f"team {team!r} is not in `teams:` "
                                                f"(known: {', '.join(sorted(map(str, teams)))})"))
    data = doc.data if isinstance(doc.data, dict) else {}
    given = [k for k in ("badge_secret", "badge_secret_env", "badge_secret_file") if data.get(k)]
    if len(given) > 1:
        problems.append(doc.problem((given[1],), f"set only one of {', '.join(given)}"))
    secret_file = data.get("badge_secret_file")
    if isinstance(secret_file, str) and secret_file and not (doc.path.parent / secret_file).is_file():
        problems.append(doc.problem(("badge_secret_file",), f"file {doc.path.parent / secret_file} not found "
                                    "(relative paths start at the patrol file's folder)"))
    return problems


def load_patrol(path: str | Path, config: AgentConfig | None = None) -> PatrolFile:
    """Load and check the patrol file; ConfigError lists every problem with its line.

    `config` (cameras.yaml) is accepted for the `edge-agent check` hook; points on cameras it does
    not list are another box's and are not an error.
    """
    path = Path(path)
    if not path.is_file():
        raise EdgeAgentError(f"patrol file {path} not found")
    doc, patrol, problems = load_doc(path, PatrolFile)
    if doc is not None and isinstance(doc.data, dict):
        problems = by_line(problems + _check(doc))
    if problems or patrol is None:
        raise ConfigError(problems)
    patrol._path = path
    return patrol


def badge_secret(patrol: PatrolFile, path: Path | None = None) -> bytes:
    """The site's badge secret; EdgeAgentError (never echoing it) when none is configured."""
    if patrol.badge_secret:
        return patrol.badge_secret.encode()
    if patrol.badge_secret_env:
        value = os.environ.get(patrol.badge_secret_env)
        if not value:
            raise EdgeAgentError(f"badge secret: environment variable {patrol.badge_secret_env} is not set")
        return value.encode()
    if patrol.badge_secret_file:
        base = (path or patrol._path or Path(".")).parent
        try:
            line = (base / patrol.badge_secret_file).read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, IndexError):
            line = ""
        if not line:
            raise EdgeAgentError(f"badge secret file {base / patrol.badge_secret_file} is missing or empty")
        return line.encode()
    raise EdgeAgentError("the patrol file sets no badge secret (badge_secret_file, badge_secret_env or "
                         "badge_secret); badges cannot be made or checked without one")


def find_member(patrol: PatrolFile, who: str) -> Member:
    """A roster entry by badge number or member name (case-insensitive)."""
    if who.strip().isdigit():
        found = patrol.badge(int(who))
        if found:
            return found
    matches = [m for m in patrol.roster if m.member.casefold() == who.strip().casefold()]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise EdgeAgentError(f"{len(matches)} roster entries are named {who!r}; use the badge number "
                             f"({', '.join(str(m.badge) for m in matches)})")
    raise EdgeAgentError(f"no badge number or member {who!r} in the roster ({len(patrol.roster)} entries)")
