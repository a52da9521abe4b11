"""systemd's notify protocol (sd_notify) over the NOTIFY_SOCKET datagram socket, no library needed.

systemd passes the socket's path in NOTIFY_SOCKET to a `Type=notify` service (a leading "@" means
the abstract namespace). Without it, as outside systemd, every call is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


class Notifier:
    """Sends state lines ("READY=1", "WATCHDOG=1", "STATUS=...") to systemd when it asked for them."""

    def __init__(self, address: str | None = None) -> None:
        address = os.environ.get("NOTIFY_SOCKET") if address is None else address
        self.address = ("\0" + address[1:]) if address and address.startswith("@") else address
        self._sock: socket.socket | None = None
        self._failed = False

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, *lines: str) -> bool:
        """True when the datagram went out. A failure is logged once and never raised: the agent's
        work matters more than telling systemd about it (the watchdog then restarts it if need be)."""
        if not self.address:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto("\n".join(lines).encode(), self.address)
            return True
        except OSError as exc:
            if not self._failed:
                log.error("systemd notify socket %s: %s", self.address.lstrip("\0"), exc)
                self._failed = True
            return False

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
