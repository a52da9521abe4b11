"""The shared web layer on its own (the console and the zone editor stand on it): log-in with its
own CSRF token, cookie flags, roles, CSRF on changes, log-out, safe redirects, Host check."""

from __future__ import annotations

import re

import pytest


from fastapi import Depends  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from edge_agent.web.app import Web, WebOptions  # noqa: E402
from edge_agent.web.auth import Session, hash_password  # noqa: E402

USERS = {"olga": ("operator", hash_password("olga-pw")), "vera": ("viewer", hash_password("vera-pw"))}


@pytest.fixture
def client() -> TestClient:
    web = Web(WebOptions("Test", {"console.example"}), USERS.get)

    @web.app.post("/change")
    def change(s: Session = Depends(web.change("operator"))) -> dict:
        return {"by": s.user}

    @web.app.get("/me")
    def me(s: Session = Depends(web.viewer)) -> dict:
        return {"user": s.user, "csrf": s.csrf}

    @web.app.get("/thing/{n}")
    def thing(n: int, s: Session = Depends(web.viewer)) -> dict:
        from fastapi import HTTPException

        raise HTTPException(404, f"no thing {n}")

    return TestClient(web.app, base_url="http://127.0.0.1")


def log_in(c: TestClient, user: str, password: str, next_: str = "/"):
    token = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text)[1]
    return c.post("/login", data={"user": user, "password": password, "csrf": token, "next": next_},
                  follow_redirects=False)


def test_login_sets_a_strict_httponly_session_and_roles_apply(client):
    r = log_in(client, "olga", "olga-pw")
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    csrf = client.get("/me").json()["csrf"]
    assert client.post("/change").status_code == 403  # no token
    assert client.post("/change", headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert client.post("/change", headers={"X-CSRF-Token": csrf}).json() == {"by": "olga"}
    assert client.post("/change", data={"csrf": csrf}).json() == {"by": "olga"}  # a plain form works too
    assert client.post("/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert client.get("/me").status_code == 401  # the session ended on the server


def test_viewer_may_read_but_not_change(client):
    log_in(client, "vera", "vera-pw")
    me = client.get("/me").json()
    r = client.post("/change", headers={"X-CSRF-Token": me["csrf"]})
    assert r.status_code == 403 and "viewer" in r.json()["detail"]


def test_login_form_needs_its_token_and_redirects_only_locally(client):
    assert client.post("/login", data={"user": "olga", "password": "olga-pw"}).status_code == 403
    assert log_in(client, "olga", "wrong").status_code == 200  # the form again, with a message
    assert client.get("/me").status_code == 401
    assert log_in(client, "olga", "olga-pw", next_="//evil.example/x").headers["location"] == "/"


def test_host_header_and_security_headers(client):
    assert client.get("/login", headers={"Host": "attacker.example"}).status_code == 421
    r = client.get("/login", headers={"Host": "console.example:8080"})
    assert r.status_code == 200
    assert "script-src 'self'" in r.headers["content-security-policy"] and r.headers["x-frame-options"] == "DENY"


def test_a_page_refused_in_the_browser_says_why_in_a_page_and_apis_keep_json(client):
    """An operator following a stale link got a bare JSON body; scripts still want JSON."""
    log_in(client, "olga", "olga-pw")
    page = client.get("/thing/7", headers={"accept": "text/html"})
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "no thing 7" in page.text and 'href="/"' in page.text
    api = client.get("/thing/7", headers={"accept": "application/json"})
    assert api.status_code == 404 and api.json() == {"detail": "no thing 7"}
