"""The web layer every page of the project stands on (the console now, the zone editor later).

`Web` builds a FastAPI app with: a Host-header check (a page reachable under a name we did not
choose is a DNS-rebinding target, even on loopback), log-in and log-out with argon2 hashes,
server-side sessions in HttpOnly SameSite=Strict cookies, a CSRF token on every state change
(form field `csrf` or header `X-CSRF-Token`), rate-limited failed log-ins, roles, Jinja2
templates and static files bundled in the package (no CDN), and a Content-Security-Policy that
allows only our own scripts. Routes of a product take `Depends(web.viewer)` to read and
`Depends(web.change(role))` to change something.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from .auth import LoginLimiter, Session, Sessions, verify_password

log = logging.getLogger("edge_agent.web")
HERE = Path(__file__).parent
COOKIE = "edge_session"
LOGIN_COOKIE = "edge_login"  # the log-in form's own CSRF token (there is no session yet)
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; media-src 'self'; "
                               "style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
UserLookup = Callable[[str], "tuple[str, str] | None"]  # name -> (role, password hash)


@dataclass
class WebOptions:
    title: str
    allowed_hosts: set[str]
    session_hours: float = 12.0
    max_failed_logins: int = 5
    templates: tuple[Path, ...] = ()  # product templates, searched before the shared ones
    static: tuple[tuple[str, Path], ...] = ()  # (url prefix, folder) of product assets
    home: str = "/"


class NeedLogin(Exception):
    pass


class Web:
    def __init__(self, opts: WebOptions, users: UserLookup) -> None:
        self.opts = opts
        self.users = users
        self.sessions = Sessions(opts.session_hours * 3600)
        self.limiter = LoginLimiter(opts.max_failed_logins)
        self.allowed = {h.lower() for h in opts.allowed_hosts} | {"localhost", "127.0.0.1", "[::1]"}
        self.app = FastAPI(title=opts.title, docs_url=None, redoc_url=None, openapi_url=None)
        self.templates = Jinja2Templates(directory=[*opts.templates, HERE / "templates"])
        self.app.mount("/static/web", StaticFiles(directory=HERE / "static"), name="web-static")
        for prefix, folder in opts.static:
            self.app.mount(prefix, StaticFiles(directory=folder), name=prefix)
        self.app.middleware("http")(self._guard)
        self.app.exception_handler(NeedLogin)(self._to_login)
        self.app.exception_handler(HTTPException)(self._error)
        self._routes()

    # -- guards ---------------------------------------------------------------------------------
    async def _guard(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        host = request.headers.get("host", "")
        name = host.rsplit(":", 1)[0].lower() if not host.endswith("]") else host.lower()
        if name not in self.allowed:
            log.warning("refused a request for Host %r from %s", host[:100], request.client.host if request.client else "?")
            return JSONResponse({"error": f"this server does not answer for host {host[:100]!r}"}, status_code=421)
        response = await call_next(request)
        for key, value in HEADERS.items():
            response.headers.setdefault(key, value)
        return response

    async def _to_login(self, request: Request, exc: NeedLogin) -> Response:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)

    async def _error(self, request: Request, exc: HTTPException) -> Response:
        """A page the operator opened (a stale link, a role that may not) gets a page saying why;
        scripts and APIs keep the JSON answer."""
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            page = self.render(request, "error.html", self.session(request), status=exc.status_code,
                               message=str(exc.detail))
            page.status_code = exc.status_code
            return page
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    def session(self, request: Request) -> Session | None:
        return self.sessions.get(request.cookies.get(COOKIE))

    def viewer(self, request: Request) -> Session:
        """Dependency: any logged-in user (pages redirect to the log-in, APIs answer 401)."""
        s = self.session(request)
        if s is None:
            if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
                raise NeedLogin()
            raise HTTPException(401, "log in first")
        return s

    def change(self, role: str) -> Callable[[Request], Awaitable[Session]]:
        """Dependency for a state change: logged in, at least `role`, and the session's CSRF token."""
        async def check(request: Request) -> Session:
            s = self.viewer(request)
            token = request.headers.get("x-csrf-token")
            if token is None and "form" in request.headers.get("content-type", ""):
                token = str((await request.form()).get("csrf") or "")
            if not token or not hmac.compare_digest(token, s.csrf):
                log.warning("refused %s %s by %s: missing or wrong CSRF token", request.method, request.url.path, s.user)
                raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")
            if not s.may(role):
                raise HTTPException(403, f"your role ({s.role}) may not do this; it needs {role}")
            return s
        return check

    def render(self, request: Request, name: str, session: Session | None, **ctx: Any) -> HTMLResponse:
        return self.templates.TemplateResponse(request, name, {
            "title": self.opts.title, "session": session, "csrf": session.csrf if session else "", **ctx})

    # -- log-in ---------------------------------------------------------------------------------
    def _routes(self) -> None:
        app = self.app

        @app.get("/login", response_class=HTMLResponse)
        def login_page(request: Request, next: str = "/") -> Response:
            token = secrets.token_urlsafe(24)
            resp = self.render(request, "login.html", None, login_csrf=token, next=_local(next), error=None)
            resp.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", max_age=3600)
            return resp

        @app.post("/login")
        async def login(request: Request) -> Response:
            form = await request.form()
            user, password = str(form.get("user") or ""), str(form.get("password") or "")
            address = request.client.host if request.client else "?"
            cookie, field = request.cookies.get(LOGIN_COOKIE) or "", str(form.get("csrf") or "")
            if not cookie or not hmac.compare_digest(cookie, field):
                raise HTTPException(403, "missing or wrong CSRF token: reload the log-in page")
            wait = self.limiter.retry_after(address, user)
            if wait > 0:
                log.warning("log-in for %r from %s refused: too many failures", user[:64], address)
                return JSONResponse({"error": f"too many failed log-ins; try again in {wait:.0f} s"},
                                    status_code=429, headers={"Retry-After": str(int(wait) + 1)})
            found = self.users(user)
            if not verify_password(found[1] if found else None, password) or found is None:
                self.limiter.failed(address, user)
                log.info("failed log-in for %r from %s", user[:64], address)
                return self.render(request, "login.html", None, login_csrf=cookie, next=_local(str(form.get("next") or "/")),
                                   error="wrong user name or password")
            s = self.sessions.create(user, found[0])
            resp = RedirectResponse(_local(str(form.get("next") or self.opts.home)), status_code=303)
            resp.set_cookie(COOKIE, s.token, httponly=True, samesite="strict", max_age=int(self.sessions.lifetime_s))
            resp.delete_cookie(LOGIN_COOKIE)
            log.info("%s (%s) logged in from %s", user, found[0], address)
            return resp

        @app.post("/logout")
        async def logout(request: Request) -> Response:
            s = await self.change("viewer")(request)
            self.sessions.end(s.token)
            resp = RedirectResponse("/login", status_code=303)
            resp.delete_cookie(COOKIE)
            return resp


def _local(path: str) -> str:
    """Only a path on this server: `next=//evil.example` must not send the user away."""
    return path if path.startswith("/") and not path.startswith("//") else "/"
