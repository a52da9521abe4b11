"""`CommandWorker`: commands from the broker, handled one at a time off paho's network thread.

The `CommandDispatcher` (commands.py, built by the caller with its table of handlers) checks and
runs each command; the worker queues what the link receives, publishes a handler's picture
through `publish_media` (a `MediaReply`), and sends the reply on `<base>/cmd/reply`.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import uuid
from typing import Any, Callable

from .commands import CommandDispatcher, MediaPublisher, MediaReply

log = logging.getLogger("edge_agent.publish")
QUEUE_SIZE = 100  # commands waiting beyond this are dropped and counted: a flood must not eat memory


class CommandWorker:
    def __init__(self, dispatcher: CommandDispatcher, publish_media: MediaPublisher,
                 send_reply: Callable[[bytes], None]) -> None:
        self.dispatcher = dispatcher
        self.publish_media = publish_media
        self.send_reply = send_reply
        self._queue: queue.Queue[tuple[str, bytes, Any] | None] = queue.Queue(maxsize=QUEUE_SIZE)
        self._thread: threading.Thread | None = None
        self.counts = {"commands_dropped": 0}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mqtt-commands", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=2)

    def on_message(self, topic: str, payload: bytes, props: Any) -> None:
        try:
            self._queue.put_nowait((topic, payload, props))
        except queue.Full:
            self.counts["commands_dropped"] += 1

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                reply = self.dispatcher.handle(*item)
                if reply is None:
                    continue
                if isinstance(reply.get("result"), MediaReply):
                    reply["result"] = self._with_media(reply["result"])
                self.send_reply(json.dumps(reply, separators=(",", ":"), default=str).encode())
            except Exception:
                log.exception("command handling error")

    def _with_media(self, reply: MediaReply) -> dict[str, Any]:
        media_id = f"snap-{uuid.uuid4().hex}"
        return {**reply.result, "snapshot_id": media_id, "topic": self.publish_media(media_id, reply.jpeg)}
