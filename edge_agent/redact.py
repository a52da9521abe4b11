"""Keep secrets out of logs, events and error messages."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlsplit

# Up to the last `@` before the path: a password with a raw `@` in it is masked whole.
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/\s]*)@")
_SECRET_KEYS = ("password", "passwd", "secret", "token", "key_file")


def redact_url(url: str) -> str:
    """`rtsp://admin:pw@cam/1` -> `rtsp://***@cam/1`; anything else unchanged."""
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}***@", str(url))


def url_secrets(*urls: str | None) -> list[str]:
    """The passwords inside URLs, as written (percent-encoded) and decoded, for `redact_text`."""
    out: list[str] = []
    for url in urls:
        password = urlsplit(url or "").password
        if password:
            out += [password, unquote(password)]
    return out


def redact_text(text: str, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """Redact URL credentials and any known secret value inside free text."""
    out = redact_url(text)
    for secret in secrets:
        if secret:
            out = out.replace(secret, "***")
    return out


def redact_mapping(data: Any) -> Any:
    """A copy of nested dicts/lists with secret-looking keys and URL credentials masked."""
    if isinstance(data, dict):
        return {
            k: ("***" if v is not None and any(s in str(k).lower() for s in _SECRET_KEYS) else redact_mapping(v))
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [redact_mapping(v) for v in data]
    if isinstance(data, str):
        return redact_url(data)
    return data
