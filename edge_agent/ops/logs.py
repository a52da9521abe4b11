"""`--log-format json`: one JSON object per line for log shippers (journald's JSON export, Loki,
Elastic), with the camera and event ids lifted out of the message where it names them.

The project's log lines say "camera <id>: ..." and name events by their UUID, so both are found
in the text: no call site has to pass extra fields.
"""

from __future__ import annotations

import json
import logging
import re

from ..clock import iso_utc

CAMERA = re.compile(r"^camera ([A-Za-z0-9_.-]+):")
EVENT_ID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        out = {"time": iso_utc(record.created), "level": record.levelname.lower(), "logger": record.name,
               "message": message}
        camera = CAMERA.match(message)
        if camera:
            out["camera"] = camera.group(1)
        event_ids = EVENT_ID.findall(message)
        if event_ids:
            out["event_id"] = event_ids[0]
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)
