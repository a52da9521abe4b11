"""The zone editor's pages and JSON, on the shared web layer (Host check, CSRF on every POST,
sessions, argon2 log-in, bundled assets).

On loopback with no password configured the page opens a session by itself: only this machine can
reach it, and SameSite=Strict cookies plus the CSRF token keep other sites' pages in the
technician's browser from posting to it. Any other address needs `editor.password_hash` in
cameras.yaml (user `technician`); `serve` refuses to start without it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from fastapi import Depends, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from ..config.loader import zones_path
from ..config.models import AgentConfig, ZoneFile
from ..detect.tile_layout import camera_setting, planner
from ..errors import EdgeAgentError
from ..rules.explain import explain
from ..web.app import COOKIE, Web, WebOptions
from ..web.auth import Session
from .agent_link import AgentLink
from .backdrop import Backdrop, Backdrops
from .zonefile import ZoneFileStore

HERE = Path(__file__).parent
USER = "technician"
MAX_UPLOAD = 20 * 1024 * 1024
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


@dataclass
class EditorSetup:
    config_path: Path
    cfg: AgentConfig  # paths made absolute by the loader
    class_names: list[str] | None
    detector: Callable[[], Any]  # the local detector, loaded on first use
    host: str


class Editor:
    def __init__(self, setup: EditorSetup) -> None:
        self.s = setup
        cfg = setup.cfg
        self.open = setup.host in LOOPBACK and not cfg.editor.password_hash  # no log-in needed

        def user(name: str) -> tuple[str, str] | None:
            return ("operator", cfg.editor.password_hash) if name == USER and cfg.editor.password_hash else None

        self.web = Web(WebOptions("Zone editor", {setup.host, *cfg.editor.allowed_hosts},
                                  templates=(HERE / "templates",), static=(("/static/editor", HERE / "static"),)), user)
        self.store = ZoneFileStore(setup.class_names, cfg.detector.model)
        self.agent = AgentLink(cfg.http)
        self.backdrops = Backdrops(cfg, self.agent, setup.detector)
        self.cameras = {c.id: c for c in cfg.cameras}
        self._planners: dict[str, Any] = {}  # camera -> its tiles for (zones, picture size)
        self._pages()
        self._api()

    def path(self, camera: str) -> Path:
        if camera not in self.cameras:
            raise HTTPException(404, f"no camera {camera!r} in {self.s.config_path}; cameras: {', '.join(self.cameras)}")
        return zones_path(self.s.config_path, self.cameras[camera])

    def _session(self, request: Request) -> Session:
        """The viewer, or on an open (loopback, no password) editor a session made on the spot."""
        s = self.web.session(request)
        if s is None and self.open:
            s = self.web.sessions.create(USER, "operator")
            request.state.new_session = s
        return s or self.web.viewer(request)

    def _pages(self) -> None:
        web, app = self.web, self.web.app

        @app.get("/")
        def home(request: Request) -> Response:
            return RedirectResponse(f"/edit/{next(iter(self.cameras))}", status_code=303)

        @app.get("/edit/{camera}", response_class=HTMLResponse)
        def edit(request: Request, camera: str) -> Response:
            self.path(camera)
            s = self._session(request)
            page = web.render(request, "editor.html", s, camera=camera, cameras=list(self.cameras))
            if getattr(request.state, "new_session", None) is not None:
                page.set_cookie(COOKIE, s.token, httponly=True, samesite="strict",
                                max_age=int(web.sessions.lifetime_s))
            return page

    def _api(self) -> None:
        web, app = self.web, self.web.app

        @app.get("/api/state/{camera}")
        def state(camera: str, s: Session = Depends(web.viewer)) -> dict[str, Any]:
            path = self.path(camera)
            loaded = self.store.read(path)
            return {"camera": camera, "path": str(path), "version": loaded.version, "doc": loaded.data,
                    "problems": loaded.problems, "classes": self.s.class_names or [],
                    "schema": ZoneFile.model_json_schema(), "timezone": self.s.cfg.site.timezone}

        @app.get("/api/frame/{camera}")
        def frame(camera: str, refresh: bool = False, s: Session = Depends(web.viewer)) -> dict[str, Any]:
            self.path(camera)
            shot, error = self.backdrops.get(camera, refresh)
            return {"frame": shot.describe() if shot else None, "error": error}

        @app.get("/api/picture/{camera}")
        def frame_jpeg(camera: str, s: Session = Depends(web.viewer)) -> Response:
            shot, _ = self.backdrops.get(camera)
            if shot is None:
                raise HTTPException(404, "no picture of this camera yet")
            return Response(shot.jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

        self._edits()

    def _edits(self) -> None:
        web, app = self.web, self.web.app
        change = web.change("operator")

        @app.post("/api/frame/{camera}")
        async def upload(request: Request, camera: str, s: Session = Depends(change)) -> dict[str, Any]:
            self.path(camera)
            data = await request.body()
            if len(data) > MAX_UPLOAD:
                raise HTTPException(413, f"the picture is over {MAX_UPLOAD // 2**20} MB")
            try:
                return {"frame": self.backdrops.upload(camera, data).describe(), "error": None}
            except EdgeAgentError as exc:
                raise HTTPException(400, str(exc)) from None

        @app.post("/api/save/{camera}")
        async def save(request: Request, camera: str, s: Session = Depends(change)) -> dict[str, Any]:
            body = await _json(request)
            path = self.path(camera)
            result = self.store.save(path, str(body.get("version", "")), body["doc"])
            out = {"saved": result.saved, "version": result.version, "problems": result.problems,
                   "conflict": result.conflict, "applied": False, "apply_message": ""}
            if result.saved:
                out["applied"], out["apply_message"] = self.agent.apply(camera)
            return out

        @app.post("/api/test/{camera}")
        async def test(request: Request, camera: str, s: Session = Depends(change)) -> dict[str, Any]:
            return await self._on_unsaved(request, camera, self._test)

        @app.post("/api/tiles/{camera}")
        async def tiles(request: Request, camera: str, s: Session = Depends(change)) -> dict[str, Any]:
            return await self._on_unsaved(request, camera, self._tiles)

    async def _on_unsaved(self, request: Request, camera: str,
                          answer: Callable[[str, ZoneFile, Backdrop], dict[str, Any]]) -> dict[str, Any]:
        """`answer` for the page's zones as sent (not saved) on the current picture, or what is
        wrong with those zones."""
        body = await _json(request)
        self.path(camera)
        try:
            rules = ZoneFile.model_validate(body["doc"])
        except ValidationError as exc:
            return {"problems": [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]}
        shot, error = self.backdrops.get(camera)
        if shot is None:
            raise HTTPException(409, error or "no picture yet: refresh it or upload one")
        return {"problems": [], **answer(camera, rules, shot)}

    def _test(self, camera: str, rules: ZoneFile, shot: Backdrop) -> dict[str, Any]:
        """The detector's boxes on the picture and, per zone, whether each would count."""
        dets, by = self.backdrops.detections(shot)
        return {"by": by, "detections": explain(rules, dets, (shot.width, shot.height), time.time(),
                                                self.s.cfg.site.timezone)}

    def _tiles(self, camera: str, rules: ZoneFile, shot: Backdrop) -> dict[str, Any]:
        """The tiles the agent would detect for these zones on a picture of this size: the same
        setting, model input size and layout as `edge-agent zones render` (tiles follow the zones)."""
        setting = camera_setting(self.s.cfg, camera)
        if camera not in self._planners:
            self._planners[camera] = planner(setting, self.s.cfg.detector.model)
        return {"tiles": self._planners[camera](rules, (shot.width, shot.height)), "size": [shot.width, shot.height],
                "setting": setting if isinstance(setting, str) else setting.model_dump()}


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise HTTPException(400, "the request body must be JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("doc"), dict):
        raise HTTPException(400, "the request needs a `doc` object (the zone file)")
    return body
