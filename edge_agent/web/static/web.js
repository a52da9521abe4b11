// Shared helpers: every state change carries the session's CSRF token.
"use strict";
const web = {
  csrf: () => document.body.dataset.csrf || "",
  async post(url, data) {
    const resp = await fetch(url, {
      method: "POST",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": web.csrf()},
      body: JSON.stringify(data || {}),
      credentials: "same-origin",
    });
    let body = {};
    try { body = await resp.json(); } catch (e) { body = {}; }
    return {ok: resp.ok, status: resp.status, body};
  },
  el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else if (k.startsWith("data-")) e.setAttribute(k, v); else e[k] = v;
    }
    for (const c of children) e.append(c === null || c === undefined ? "" : c);
    return e;
  },
};
window.web = web;
