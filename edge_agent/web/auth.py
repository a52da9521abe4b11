"""Passwords, sessions and the log-in limiter of every web page the project serves.

Passwords are argon2id hashes (argon2-cffi). A session is a random token in an HttpOnly,
SameSite=Strict cookie; the server keeps the user, role and the session's CSRF token, so logging
out or a restart ends it. Failed log-ins are counted per address and per user name: past the
limit within the window the answer is 429 until the window has moved on.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

ROLE_RANK = {"viewer": 1, "operator": 2, "admin": 3}
_hasher = PasswordHasher()
# Verifying against this when the user does not exist keeps the answer time the same, so the
# time of a refusal does not tell which user names exist.
_DUMMY = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _DUMMY, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


@dataclass
class Session:
    token: str
    user: str
    role: str
    csrf: str
    expires: float

    def may(self, role: str) -> bool:
        return ROLE_RANK.get(self.role, 0) >= ROLE_RANK[role]


@dataclass
class Sessions:
    lifetime_s: float
    _by_token: dict[str, Session] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def create(self, user: str, role: str) -> Session:
        s = Session(secrets.token_urlsafe(32), user, role, secrets.token_urlsafe(32), time.monotonic() + self.lifetime_s)
        with self._lock:
            self._by_token[s.token] = s
        return s

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        with self._lock:
            s = self._by_token.get(token)
            if s is not None and s.expires < time.monotonic():
                del self._by_token[token]
                return None
            return s

    def end(self, token: str | None) -> None:
        with self._lock:
            self._by_token.pop(token or "", None)


class LoginLimiter:
    """At most `limit` failures per address and per user name within `window_s`."""

    def __init__(self, limit: int, window_s: float = 300.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._fails: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._fails[key]
        while q and q[0] <= now - self.window_s:
            q.popleft()
        return q

    def retry_after(self, address: str, user: str) -> float:
        """Seconds until a log-in may be tried again; 0 when it may now."""
        now = time.monotonic()
        with self._lock:
            waits = [q[0] + self.window_s - now for key in (f"a:{address}", f"u:{user}")
                     if len(q := self._recent(key, now)) >= self.limit]
        return max(waits, default=0.0)

    def failed(self, address: str, user: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in (f"a:{address}", f"u:{user}"):
                self._recent(key, now).append(now)
