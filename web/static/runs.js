// Runs list of the built-in UI: the gateway's run index, GET /api/threads
// (docs/PROTOCOL.md §3.9), refreshed every few seconds: graph, status, age,
// records, and a LIVE badge for a running run that sent something
// recently. A run opens in the run view (run.html?thread=…).
"use strict";
(() => {
  const REFRESH_MS = 3000, LIVE_MS = 30000, LIMIT = 50;
  const tbody = document.getElementById("runs-index");
  const note = document.getElementById("runs-note");
  if (!tbody) return;
  let runs = [];

  function token() { return sessionStorage.getItem("dashstream.token") || ""; }

  function fmtAge(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    return s < 60 ? s + " s" : s < 3600 ? Math.floor(s / 60) + " min" : Math.floor(s / 3600) + " h";
  }

  function cell(text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }

  function render() {
    const now = Date.now();
    const rows = runs.map((r) => {
      const lastMs = Math.floor((r.last_timestamp_us || 0) / 1000);
      const live = r.status === "running" && now - lastMs < LIVE_MS;
      const tr = document.createElement("tr");
      tr.className = "run";
      Object.assign(tr.dataset, { thread: r.thread_id, status: r.status, live: String(live) });
      const a = document.createElement("a");
      a.href = "run.html?thread=" + encodeURIComponent(r.thread_id);
      a.textContent = r.thread_id;
      const first = document.createElement("td");
      first.className = "mono";
      first.append(a);
      const st = cell(r.status, "status-" + r.status);
      if (live) {
        const b = document.createElement("span");
        b.className = "badge live";
        b.textContent = "LIVE";
        st.append(" ", b);
      }
      tr.append(first, cell(r.graph_name || ""), st, cell(String(r.record_count), "num"),
        cell(lastMs ? fmtAge(now - lastMs) : "", "num"),
        cell(r.latest_full_state ? "seq " + r.latest_full_state.sequence : "", "muted"));
      return tr;
    });
    tbody.replaceChildren(...rows);
  }

  async function refresh() {
    try {
      const t = token();
      const r = await fetch("api/threads?limit=" + LIMIT, { cache: "no-store", headers: t ? { Authorization: "Bearer " + t } : {} });
      if (!r.ok) throw new Error("HTTP " + r.status);
      const body = await r.json();
      // Newest run first, by its first record: rows only move when a run starts.
      runs = (body.threads || []).slice().sort((a, b) => (b.first_timestamp_us || 0) - (a.first_timestamp_us || 0) ||
        (a.thread_id < b.thread_id ? -1 : a.thread_id > b.thread_id ? 1 : 0));
      note.textContent = runs.length + " runs in the replay window" + (body.next ? " (first " + LIMIT + ")" : "") + " · refreshed " + new Date().toLocaleTimeString();
      note.dataset.state = "ok";
    } catch (e) {
      note.textContent = "run index unavailable (" + e.message + ")";
      note.dataset.state = "unavailable";
    }
    render();
  }

  refresh();
  setInterval(refresh, REFRESH_MS);
})();
