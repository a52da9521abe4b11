// The health board and the patrol board: re-read on every server-sent change and every 5 s.
"use strict";
(function () {
  const health = document.getElementById("health");
  const patrol = document.getElementById("patrol");
  const el = web.el;
  const num = (v, digits) => (v === null || v === undefined ? "-" : Number(v).toFixed(digits));
  const age = (s) => (s === null || s === undefined ? "-" : s < 120 ? `${Number(s).toFixed(1)} s` : `${Math.round(s / 60)} min`);

  function healthRows(devices) {
    const rows = [];
    for (const d of devices) {
      rows.push(el("tr", {"class": `dev s-${d.state}`, "data-key": `${d.site}/${d.device}`},
        el("th", {}, `${d.site} / ${d.device}`), el("td", {"class": "state"}, d.state), el("td", {}, ""),
        el("td", {}, ""), el("td", {}, num(d.detector_ms, 1)), el("td", {}, d.outbox_depth ?? "-"),
        el("td", {}, age(d.outbox_oldest_s)), el("td", {}, `${d.last_seen} (${age(d.age_s)} ago)`)));
      for (const c of d.cameras) {
        rows.push(el("tr", {"class": `cam s-${c.state}`, "data-key": `${c.site}/${c.device}/${c.id}`},
          el("td", {}, `\u2003${c.name}`), el("td", {"class": "state"}, c.state), el("td", {}, num(c.fps, 1)),
          el("td", {}, age(c.frame_age_s)), el("td", {}), el("td", {}), el("td", {}), el("td", {})));
      }
    }
    health.querySelector("tbody").replaceChildren(...rows);
    document.getElementById("empty").hidden = devices.length > 0;
  }

  function lastCheckin(p) {
    if (!p.last.at) return el("td", {"class": "dim"}, "never");
    const who = `${p.last.member || "?"}${p.last.badge !== null && p.last.badge !== undefined ? ` (badge ${p.last.badge})` : ""}`;
    return el("td", {}, `${p.last.at} \u2013 ${who}`);
  }

  function snapshot(p) {
    if (!p.last.event_id) return el("td", {});
    const a = el("a", {href: `/patrol/snapshot/${p.last.event_id}.jpg`, target: "_blank"});
    a.append(el("img", {src: `/patrol/snapshot/${p.last.event_id}.jpg`, alt: "check-in", "class": "thumb"}));
    return el("td", {}, a);
  }

  function patrolTeams(teams) {
    patrol.replaceChildren(...teams.map((t) => {
      const table = el("table", {"class": "board team", "data-team": t.team},
        el("caption", {}, `${t.team}: ${t.visited} of ${t.total} points checked in today`
                          + (t.overdue ? `, ${t.overdue} overdue` : "")),
        el("thead", {}, el("tr", {}, ...["Point", "Name", "Camera", "State", "Due", "Last check-in", "Snapshot"]
          .map((h) => el("th", {}, h)))));
      const body = el("tbody", {});
      for (const p of t.points) {
        body.append(el("tr", {"class": `pt s-${p.state}`, "data-key": `${p.site}/${p.device}/${p.id}`},
          el("td", {}, p.id), el("td", {}, p.name), el("td", {}, p.camera), el("td", {"class": "state"}, p.state),
          el("td", {}, p.due_local), lastCheckin(p), snapshot(p)));
      }
      table.append(body);
      const bar = el("div", {"class": "coverage"}, el("span", {}));
      bar.firstChild.style.width = `${t.total ? (100 * t.visited) / t.total : 0}%`;
      return el("section", {}, bar, table);
    }));
    document.getElementById("empty").hidden = teams.length > 0;
  }

  async function refresh() {
    const url = health ? "/api/health" : "/api/patrol";
    const resp = await fetch(url, {credentials: "same-origin"});
    if (resp.status === 401) { location.href = `/login?next=${location.pathname}`; return; }
    const data = await resp.json();
    if (health) healthRows(data.devices); else patrolTeams(data.teams);
    document.body.dataset.loaded = String(Date.now());
  }

  new EventSource("/api/stream").onmessage = () => refresh();
  setInterval(refresh, 5000);
  refresh();
})();
