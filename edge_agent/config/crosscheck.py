"""Cross-checks of a cameras file that pydantic cannot do alone: files that must exist, secrets
that must be set, camera logins, the broker section, the time zone.

They read the raw YAML data, not the validated model, so they still report when some other key
of the same file is wrong: every problem comes out in one pass, as `file:line: key: problem`.
"""

from __future__ import annotations

import difflib
import os
import zoneinfo
from pathlib import Path

from ..errors import EdgeAgentError
from .messages import YamlDoc, get_in, items_in
from .secrets import has_userinfo, missing_vars, read_secret


def resolve(config_path: str | Path, value: str | Path) -> Path:
    """A path written in cameras.yaml: absolute as is, relative to the cameras file's folder."""
    p = Path(value).expanduser()
    # normpath only tidies `a/../b` for messages; the file reached is the same.
    return p if p.is_absolute() else Path(os.path.normpath(Path(config_path).parent / p))


def is_url(value: str) -> bool:
    return "://" in value


# What FFmpeg (PyAV) opens for a camera; anything else is almost surely a typing mistake (rtps://).
SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "srt", "udp", "tcp", "file")


def _source_problem(doc: YamlDoc, value: str) -> str | None:
    """Why a camera `url` cannot be opened as written, or None."""
    if is_url(value):
        scheme = value.split("://", 1)[0].lower()
        if scheme in SCHEMES:
            return None
        # Swapped letters first (rtps -> rtsp), then the nearest spelling.
        close = [s for s in SCHEMES if sorted(s) == sorted(scheme)] or \
            difflib.get_close_matches(scheme, SCHEMES, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]}://? " if close else ""
        return f"unknown URL scheme {scheme!r}; {hint}use one of {', '.join(s + '://' for s in SCHEMES)}"
    if Path(value).exists() or resolve(doc.path, value).exists():
        return None
    return (f"video file {value!r} not found (neither from the working folder nor beside the cameras file); "
            "an RTSP camera needs a URL like rtsp://host:554/stream")


def check_config(doc: YamlDoc) -> list[str]:
    """Cross-field and file-system checks that pydantic cannot do alone."""
    problems: list[str] = []
    seen: dict[str, int] = {}
    for i, cam in items_in(doc.data, "cameras"):
        cam_id = cam.get("id")
        if isinstance(cam_id, str) and cam_id in seen:
            problems.append(doc.problem(("cameras", i, "id"), f"camera id {cam_id!r} is used twice (first at line "
                                        f"{doc.line(('cameras', seen[cam_id], 'id'))}); ids must be unique"))
        elif isinstance(cam_id, str):
            seen[cam_id] = i
        for key in ("url", "substream_url"):
            value = cam.get(key)
            why = _source_problem(doc, value) if isinstance(value, str) and value else None
            if why:
                problems.append(doc.problem(("cameras", i, key), why))
        problems += _check_camera_login(doc, i, cam)
    tz = get_in(doc.data, "site", "timezone")
    if isinstance(tz, str):
        problems += _check_timezone(doc, tz)
    problems += _check_mqtt(doc)
    patrol = get_in(doc.data, "patrol")
    if isinstance(patrol, str) and not resolve(doc.path, patrol).is_file():
        problems.append(doc.problem(("patrol",), f"patrol file {resolve(doc.path, patrol)} not found"))
    return problems


def _check_timezone(doc: YamlDoc, tz: str) -> list[str]:
    try:
        zoneinfo.ZoneInfo(tz)
        return []
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        close = difflib.get_close_matches(tz, sorted(zoneinfo.available_timezones()), n=2, cutoff=0.6)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        return [doc.problem(("site", "timezone"), f"{tz!r} is not a known time zone; use an IANA name such "
                            f"as UTC, Europe/Oslo or America/New_York{hint}")]


def _check_file(doc: YamlDoc, loc: tuple[str, ...]) -> list[str]:
    value = get_in(doc.data, *loc)
    if isinstance(value, str) and value and not resolve(doc.path, value).is_file():
        return [doc.problem(loc, f"file {resolve(doc.path, value)} not found (relative paths start at the "
                            "cameras file's folder)")]
    return []


_LOGIN_KEYS = ("username", "password_env", "password_file")


def _check_camera_login(doc: YamlDoc, i: int, cam: dict) -> list[str]:
    """A camera's user and password keys: one password source, only for stream URLs, not twice."""
    given = [k for k in _LOGIN_KEYS if cam.get(k)]
    if not given:
        return []
    where = ("cameras", i, given[0])
    problems = _check_file(doc, ("cameras", i, "password_file"))
    if cam.get("password_env") and cam.get("password_file"):
        problems.append(doc.problem(("cameras", i, "password_file"), "set only one of password_env, password_file"))
    url = cam.get("url")
    if isinstance(url, str) and not is_url(url):
        problems.append(doc.problem(where, "a video file has no login; username and password_* are for stream URLs"))
    for key in ("url", "substream_url"):
        value = cam.get(key)
        if isinstance(value, str) and has_userinfo(value):
            problems.append(doc.problem(("cameras", i, key), f"this URL has its own user:password and the camera "
                                        f"sets {', '.join(given)}; keep one (the keys keep the password out of "
                                        "the file)"))
    return problems


def check_secrets(doc: YamlDoc) -> list[str]:
    """Secrets the agent reads at start: an unset variable or unreadable file stops `run`, so it is
    a problem here too, not a warning (a shell without the variable fails `check` the same way)."""
    problems: list[str] = []
    for i, cam in items_in(doc.data, "cameras"):
        if cam.get("enabled") is False:
            continue
        for key in ("url", "substream_url"):
            value = cam.get(key)
            missing = missing_vars(value) if isinstance(value, str) else []
            if missing:
                problems.append(doc.problem(("cameras", i, key), f"environment variable {', '.join(missing)} "
                                            "is not set"))
        problems += _secret_problem(doc, ("cameras", i), cam, "the camera's password")
    mqtt = get_in(doc.data, "mqtt")
    if isinstance(mqtt, dict) and mqtt.get("enabled") is not False:
        problems += _secret_problem(doc, ("mqtt",), mqtt, "the broker password")
        env = mqtt.get("command_secret_env")
        if isinstance(env, str) and env and not mqtt.get("command_secret") and env not in os.environ:
            problems.append(doc.problem(("mqtt", "command_secret_env"), f"environment variable {env} is not "
                                        "set; without it commands could not be verified"))
    return problems


def _secret_problem(doc: YamlDoc, loc: tuple, section: dict, what: str) -> list[str]:
    env, file = section.get("password_env"), section.get("password_file")
    if isinstance(env, str) and env:
        if env not in os.environ:
            return [doc.problem((*loc, "password_env"), f"environment variable {env} is not set; it holds {what}")]
    elif isinstance(file, str) and file and resolve(doc.path, file).is_file():
        try:
            read_secret("", None, str(resolve(doc.path, file)))
        except EdgeAgentError as exc:
            return [doc.problem((*loc, "password_file"), str(exc).split(": ", 1)[1])]
    return []


def _check_mqtt(doc: YamlDoc) -> list[str]:
    mqtt = get_in(doc.data, "mqtt")
    if not isinstance(mqtt, dict) or mqtt.get("enabled") is False:
        return []
    problems: list[str] = []
    given = [k for k in ("password", "password_env", "password_file") if mqtt.get(k)]
    if len(given) > 1:
        problems.append(doc.problem(("mqtt", given[1]), f"set only one of {', '.join(given)}"))
    problems += _check_file(doc, ("mqtt", "password_file"))
    tls = mqtt.get("tls")
    if isinstance(tls, dict):
        for key in ("ca_file", "cert_file", "key_file"):
            problems += _check_file(doc, ("mqtt", "tls", key))
        if bool(tls.get("cert_file")) != bool(tls.get("key_file")):
            have = "cert_file" if tls.get("cert_file") else "key_file"
            problems.append(doc.problem(("mqtt", "tls", have), "a client certificate needs both cert_file and "
                                        "key_file"))
    return problems
