// The live alarm list: re-read on every server-sent change; j/k move, a acknowledges, Enter opens.
"use strict";
(function () {
  const table = document.getElementById("alarms");
  const body = table.querySelector("tbody");
  const message = document.getElementById("message");
  const live = document.getElementById("live");
  const mayChange = table.dataset.mayChange === "yes";
  let rows = [], selected = 0, known = null, escalated = new Set();

  const query = () => new URLSearchParams(new FormData(document.getElementById("filters"))).toString();

  function render() {
    body.replaceChildren(...rows.map((a, i) => {
      const tr = web.el("tr", {"class": `state-${a.state}` + (a.escalated ? " escalated" : "") + (i === selected ? " selected" : ""),
                               "data-id": String(a.id), "data-version": String(a.version)},
        web.el("td", {}, String(a.priority)),
        web.el("td", {}, a.started),
        web.el("td", {}, `${a.site} / ${a.camera}`),
        web.el("td", {}, a.zone || "-"),
        web.el("td", {}, a.type),
        web.el("td", {}, a.label ? `${a.label} ${a.score !== null ? a.score.toFixed(2) : ""}` : "-"),
        web.el("td", {}, a.count > 1 ? `\u00d7${a.count}` : ""),
        web.el("td", {"class": "state"}, a.state + (a.escalated ? " !" : "")),
        web.el("td", {}, a.assignee || ""));
      tr.addEventListener("click", () => { location.href = `/alarms/${a.id}`; });
      return tr;
    }));
    document.getElementById("empty").hidden = rows.length > 0;
  }

  async function refresh() {
    const resp = await fetch(`/api/alarms?${query()}`, {credentials: "same-origin"});
    if (resp.status === 401) { location.href = "/login?next=/"; return; }
    const data = await resp.json();
    const ids = new Set(data.alarms.map((a) => a.id));
    const fresh = known !== null && data.alarms.some((a) => !known.has(a.id));
    const newlyEscalated = data.alarms.filter((a) => a.escalated && !escalated.has(a.id));
    const keep = rows[selected] && rows[selected].id;
    rows = data.alarms;
    selected = Math.max(0, rows.findIndex((a) => a.id === keep));
    known = ids;
    escalated = new Set(data.alarms.filter((a) => a.escalated).map((a) => a.id));
    render();
    if (fresh) beep(880, 200);
    if (newlyEscalated.length) beep(440, 600);
  }

  async function acknowledge() {
    const a = rows[selected];
    if (!a || !mayChange) return;
    const r = await web.post(`/api/alarms/${a.id}/action`, {action: "acknowledge", version: a.version});
    message.textContent = r.ok ? `alarm ${a.id} acknowledged` : (r.body.detail || `error ${r.status}`);
    refresh();
  }

  document.addEventListener("keydown", (e) => {
    if (e.target.closest("input, select, textarea")) return;
    if (e.key === "j") { selected = Math.min(rows.length - 1, selected + 1); render(); }
    else if (e.key === "k") { selected = Math.max(0, selected - 1); render(); }
    else if (e.key === "a") { acknowledge(); }
    else if (e.key === "Enter" && rows[selected]) { location.href = `/alarms/${rows[selected].id}`; }
  });

  const source = new EventSource("/api/stream");
  source.onopen = () => { live.textContent = "live"; live.className = "live on"; };
  source.onerror = () => { live.textContent = "reconnecting\u2026"; live.className = "live"; };
  source.onmessage = () => refresh();
  setInterval(refresh, 10000);  // escalation is a matter of time passing, not of a change
  refresh();
})();
