"""The map, the health board and the patrol board: pages, their JSON, the map's background.

Reading only (any logged-in role). The pages re-read their JSON on every server-sent change
(`/api/stream`, shared with the alarm list) and every few seconds, since a box falling silent
is a matter of time passing, not of a message. The map's background is, in order: a folder of
offline tiles (`map.tiles`), an operator's picture with two reference points (`map.image`), or
none: a plain lat/lon plot. No tile server, no CDN.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import Depends, HTTPException, Request, Response
from fastapi.responses import FileResponse, HTMLResponse

from ..clock import Clock
from ..config.central import CentralConfig
from ..web.app import Web
from ..web.auth import Session
from . import boards, queries
from .schema import checkins


class FleetPages:
    def __init__(self, web: Web, cfg: CentralConfig, engine: Any, clock: Clock) -> None:
        self.web = web
        self.cfg = cfg
        self.engine = engine
        self.clock = clock
        self._pages()
        self._api()
        self._background()

    def _view(self) -> dict[str, Any]:
        """What map.js needs to draw the background."""
        m = self.cfg.map
        if m.tiles:
            return {"mode": "tiles", "max_zoom": m.max_zoom}
        if m.image:
            return {"mode": "image", "max_zoom": m.max_zoom, "ref": [r.model_dump() for r in m.image.ref]}
        return {"mode": "plain", "max_zoom": m.max_zoom}

    def _pages(self) -> None:
        web, app = self.web, self.web.app

        @app.get("/map", response_class=HTMLResponse)
        def map_page(request: Request, s: Session = Depends(web.viewer)) -> Response:
            return web.render(request, "map.html", s, view=json.dumps(self._view()))

        @app.get("/health", response_class=HTMLResponse)
        def health_page(request: Request, s: Session = Depends(web.viewer)) -> Response:
            return web.render(request, "health.html", s)

        @app.get("/patrol", response_class=HTMLResponse)
        def patrol_page(request: Request, s: Session = Depends(web.viewer)) -> Response:
            return web.render(request, "patrol.html", s, tz=self.cfg.timezone)

        @app.get("/patrol/snapshot/{event_id}.jpg")
        def checkin_snapshot(event_id: str, s: Session = Depends(web.viewer)) -> Response:
            with self.engine.connect() as conn:
                known = conn.execute(checkins.select().where(checkins.c.event_id == event_id)).first()
            row = queries.media_row(self.engine, event_id, "snapshot") if known else None
            path = Path(self.cfg.media.dir) / row["path"] if row else None
            if path is None or not path.is_file():
                raise HTTPException(404, "no snapshot for this check-in (yet)")
            return FileResponse(path, media_type="image/jpeg")

    def _api(self) -> None:
        web, app = self.web, self.web.app
        stale = self.cfg.map.stale_after_s

        @app.get("/api/map")
        def api_map(s: Session = Depends(web.viewer)) -> dict[str, Any]:
            return boards.map_data(self.engine, self.clock.now(), stale)

        @app.get("/api/camera/{site}/{device}/{camera}")
        def api_camera(site: str, device: str, camera: str, s: Session = Depends(web.viewer)) -> dict[str, Any]:
            panel = boards.camera_panel(self.engine, site, device, camera, self.cfg.timezone)
            if panel is None:
                raise HTTPException(404, f"no camera {camera} in the inventory of {site}/{device}")
            return panel

        @app.get("/api/health")
        def api_health(s: Session = Depends(web.viewer)) -> dict[str, Any]:
            return {"devices": boards.health_board(self.engine, self.clock.now(), stale, self.cfg.timezone)}

        @app.get("/api/patrol")
        def api_patrol(s: Session = Depends(web.viewer)) -> dict[str, Any]:
            return {"teams": boards.patrol_board(self.engine, self.clock.now(), stale, self.cfg.timezone)}

    def _background(self) -> None:
        web, app, m = self.web, self.web.app, self.cfg.map

        @app.get("/map/image")
        def map_image(s: Session = Depends(web.viewer)) -> Response:
            if m.image is None or not Path(m.image.file).is_file():
                raise HTTPException(404, "no map image configured (map.image.file)")
            return FileResponse(m.image.file)

        @app.get("/map/tiles/{z}/{x}/{y}.png")
        def map_tile(z: int, x: int, y: int, s: Session = Depends(web.viewer)) -> Response:
            # ints only: no path from the request reaches the file system
            path = Path(m.tiles or "") / str(z) / str(x) / f"{y}.png"
            if not m.tiles or not path.is_file():
                raise HTTPException(404, "no such tile")
            return FileResponse(path, media_type="image/png")
