"""The console's pages and their JSON: the live list, one alarm, media, evidence, the daily report.

Reading needs a log-in (any role); changing an alarm needs `operator` and the CSRF token (the
shared web layer checks both). The list page listens on `/api/stream` (server-sent events) and
re-reads `/api/alarms` when something changed.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, AsyncIterator
from zoneinfo import ZoneInfo

from fastapi import Depends, HTTPException, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, StreamingResponse

from ..clock import Clock
from ..config.central import DISPOSITIONS, CentralConfig
from ..web.app import Web
from ..web.auth import Session
from . import queries
from .evidence import evidence_zip
from .ingest import Changes
from .workflow import Change, Conflict, Invalid, NotFound, Workflow

HERE = Path(__file__).parent
STREAM_HEARTBEAT_S = 15.0


class Console:
    def __init__(self, web: Web, cfg: CentralConfig, workflow: Workflow, changes: Changes, clock: Clock) -> None:
        self.web = web
        self.cfg = cfg
        self.wf = workflow
        self.engine = workflow.store.engine
        self.changes = changes
        self.clock = clock
        self._pages()
        self._api()

    def _alarm(self, alarm_id: int) -> dict[str, Any]:
        try:
            row = self.wf.get(alarm_id)
        except NotFound:
            raise HTTPException(404, f"no alarm {alarm_id}") from None
        return queries.present(row, self.clock.now(), self.cfg.workflow.escalate_after_s, self.cfg.timezone)

    def _media_path(self, event_id: str, kind: str) -> Path | None:
        row = queries.media_row(self.engine, event_id, kind)
        return Path(self.cfg.media.dir) / row["path"] if row else None

    def _pages(self) -> None:
        web, app = self.web, self.web.app

        @app.get("/", response_class=HTMLResponse)
        def alarm_list(request: Request, s: Session = Depends(web.viewer)) -> Response:
            return web.render(request, "alarms.html", s, options=queries.filter_values(self.engine),
                              states=queries.OPEN_STATES + ("closed",), current=dict(request.query_params),
                              escalate_after_s=self.cfg.workflow.escalate_after_s)

        @app.get("/alarms/{alarm_id}", response_class=HTMLResponse)
        def alarm_view(request: Request, alarm_id: int, s: Session = Depends(web.viewer)) -> Response:
            return web.render(request, "alarm.html", s, alarm=self._alarm(alarm_id), dispositions=DISPOSITIONS)

        @app.get("/report", response_class=HTMLResponse)
        def report(request: Request, day: str | None = None, s: Session = Depends(web.viewer)) -> Response:
            day = day or datetime.now(ZoneInfo(self.cfg.timezone)).strftime("%Y-%m-%d")
            try:
                rows = queries.daily_report(self.engine, day, self.cfg.timezone)
            except ValueError:
                raise HTTPException(400, "day must be YYYY-MM-DD") from None
            return web.render(request, "report.html", s, day=day, rows=rows, dispositions=DISPOSITIONS + ("open",),
                              tz=self.cfg.timezone)

        @app.get("/media/{alarm_id}/{kind}")
        def alarm_media(alarm_id: int, kind: str, s: Session = Depends(web.viewer)) -> Response:
            path = self._media_path(self._alarm(alarm_id)["event_id"], kind)
            if path is None or not path.is_file():
                raise HTTPException(404, f"no {kind} for alarm {alarm_id} (yet)")
            return FileResponse(path, media_type="video/mp4" if kind == "clip" else "image/jpeg")

        @app.get("/fresh/{alarm_id}/{snapshot_id}.jpg")
        def fresh_media(alarm_id: int, snapshot_id: str, s: Session = Depends(web.viewer)) -> Response:
            fresh = queries.latest_fresh_snapshot(self.engine, alarm_id)
            path = self._media_path(snapshot_id, "snapshot") if fresh and fresh["snapshot_id"] == snapshot_id else None
            if path is None or not path.is_file():
                raise HTTPException(404, "no such fresh picture for this alarm")
            return FileResponse(path, media_type="image/jpeg")

        @app.get("/alarms/{alarm_id}/evidence.zip")
        def evidence(alarm_id: int, s: Session = Depends(web.viewer)) -> Response:
            self._alarm(alarm_id)  # 404 when there is none
            alarm = self.wf.get(alarm_id)
            media = {k: p for k in ("snapshot", "clip") if (p := self._media_path(alarm["event_id"], k)) and p.is_file()}
            data = evidence_zip(alarm, self.wf.store.event_payloads(alarm_id), self.wf.audit_of(alarm_id), media,
                                s.user, self.clock.now())
            return Response(data, media_type="application/zip", headers={
                "Content-Disposition": f'attachment; filename="alarm-{alarm_id}-evidence.zip"'})

    def _api(self) -> None:
        web, app = self.web, self.web.app

        @app.get("/api/alarms")
        def api_list(request: Request, s: Session = Depends(web.viewer)) -> dict[str, Any]:
            version = self.changes.version
            rows = queries.list_alarms(self.engine, dict(request.query_params), self.clock.now(),
                                       self.cfg.workflow.escalate_after_s, self.cfg.timezone)
            return {"version": version, "alarms": rows}

        @app.get("/api/alarms/{alarm_id}")
        def api_alarm(alarm_id: int, s: Session = Depends(web.viewer)) -> dict[str, Any]:
            alarm = self._alarm(alarm_id)
            paths = {k: self._media_path(alarm["event_id"], k) for k in ("snapshot", "clip")}
            have = {k: p is not None for k, p in paths.items()}
            audit = [{**a, "when": queries.local_time(a["at"], self.cfg.timezone)} for a in self.wf.audit_of(alarm_id)]
            codec = queries.video_codec(str(paths["clip"])) if paths["clip"] else None
            return {"alarm": alarm, "media": have, "clip_codec": codec, "audit": audit,
                    "fresh": queries.latest_fresh_snapshot(self.engine, alarm_id), "events": self.wf.store.event_payloads(alarm_id), "may_change": s.may("operator")}

        @app.post("/api/alarms/{alarm_id}/action")
        async def api_action(request: Request, alarm_id: int,
                             s: Session = Depends(web.change("operator"))) -> dict[str, Any]:
            data = await _body(request)
            try:
                version = int(data.get("version", -1))
                if data.get("action") == "shelve":
                    self.wf.shelve_zone(alarm_id, s.user, float(data.get("hours", 0)))
                elif data.get("action") == "snapshot":
                    self.wf.request_snapshot(alarm_id, s.user)
                else:
                    self.wf.apply(alarm_id, Change(str(data.get("action")), s.user, version,
                                                   _opt(data, "assignee"), _opt(data, "disposition"), _opt(data, "note")))
            except Conflict as exc:
                raise HTTPException(409, str(exc)) from None
            except NotFound as exc:
                raise HTTPException(404, str(exc)) from None
            except (Invalid, ValueError) as exc:
                raise HTTPException(400, str(exc)) from None
            self.changes.bump()
            return {"alarm": self._alarm(alarm_id)}

        @app.get("/api/stream")
        async def stream(request: Request, s: Session = Depends(web.viewer)) -> StreamingResponse:
            return StreamingResponse(self._events(request), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def _events(self, request: Request) -> AsyncIterator[str]:
        # Starlette cancels this generator when the page goes away; a comment now and then keeps
        # proxies from closing a quiet stream.
        seen = self.changes.version
        yield f"data: {seen}\n\n"
        while True:
            now = await self.changes.changed(seen, STREAM_HEARTBEAT_S)
            if now != seen:
                seen = now
                yield f"data: {seen}\n\n"
            else:
                yield ": still here\n\n"


async def _body(request: Request) -> dict[str, Any]:
    if "json" in request.headers.get("content-type", ""):
        try:
            data = json.loads(await request.body())
        except ValueError:
            raise HTTPException(400, "the request body is not JSON") from None
        if not isinstance(data, dict):
            raise HTTPException(400, "the request body must be a JSON object")
        return data
    return {k: str(v) for k, v in (await request.form()).items()}


def _opt(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return str(value)[:2000] if value not in (None, "") else None
