"""Secrets the config points at: passwords in an environment variable or a file, `${VAR}` in URLs.

The config holds only where a secret is; the value is read when a connection is made, so it never
sits in cameras.yaml, in the parsed config or in a log line. A camera's user and password are put
into its stream URLs only when they are opened, percent-encoded, so `@ # : /` in a password work.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote

from ..errors import EdgeAgentError
from .models import Camera, Mqtt

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def read_secret(where: str, env: str | None, file: str | None) -> str | None:
    """The value of `<where>.password_env` or `<where>.password_file` (first line); None when neither."""
    if env:
        value = os.environ.get(env)
        if value is None:
            raise EdgeAgentError(f"{where}.password_env: environment variable {env} is not set")
        return value
    if file:
        try:
            lines = Path(file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            why = getattr(exc, "strerror", None) or "not UTF-8 text"
            # from None on purpose: the cause's own text may carry a password; this message is redacted
            raise EdgeAgentError(f"{where}.password_file: cannot read {file} ({why})") from None
        return lines[0] if lines else ""
    return None


def _userinfo_end(url: str) -> int:
    """Index of the `@` that ends a URL's user:password part, or -1."""
    start = url.find("://")
    if start < 0:
        return -1
    start += 3
    stop = len(url)
    for sep in "/?":
        at = url.find(sep, start)
        if at >= 0:
            stop = min(stop, at)
    return url.rfind("@", start, stop)


def missing_vars(url: str) -> list[str]:
    """The `${VAR}` names in `url` that the environment does not set."""
    return [name for name in _VAR.findall(url) if name not in os.environ]


def expand_vars(url: str, where: str) -> str:
    """`${VAR}` replaced from the environment; inside user:password the value is percent-encoded."""
    missing = missing_vars(url)
    if missing:
        raise EdgeAgentError(f"{where}: environment variable {', '.join(missing)} is not set")
    end = _userinfo_end(url)

    def value(m: re.Match) -> str:
        text = os.environ[m[1]]
        return quote(text, safe="") if m.start() < end else text

    return _VAR.sub(value, url)


def has_userinfo(url: str) -> bool:
    return _userinfo_end(url) >= 0


def with_credentials(url: str, username: str | None, password: str | None) -> str:
    """`url` with `username:password@` put in, both percent-encoded; a URL's own user:password stays."""
    if (username is None and password is None) or "://" not in url or has_userinfo(url):
        return url
    scheme, rest = url.split("://", 1)
    auth = quote(username or "", safe="") + ("" if password is None else ":" + quote(password, safe=""))
    return f"{scheme}://{auth}@{rest}"


def camera_password(cam: Camera) -> str | None:
    return read_secret(f"camera {cam.id}", cam.password_env, cam.password_file)


def stream_urls(cam: Camera) -> tuple[str, str | None]:
    """(url, substream_url) as they are opened: variables expanded, the camera's credentials in.

    Raises EdgeAgentError naming the camera and the key (never the value) when a secret is missing.
    """
    password = camera_password(cam)

    def full(url: str, key: str) -> str:
        return with_credentials(expand_vars(url, f"camera {cam.id}.{key}"), cam.username, password)

    return full(cam.url, "url"), (full(cam.substream_url, "substream_url") if cam.substream_url else None)


def command_secret(mqtt: Mqtt) -> str | None:
    """The shared secret that signs commands: `command_secret`, else `command_secret_env`'s value."""
    return mqtt.command_secret or (os.environ.get(mqtt.command_secret_env) if mqtt.command_secret_env else None)
