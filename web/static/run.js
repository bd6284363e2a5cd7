// Run view of the built-in UI (run.html?thread=<thread_id>): follows one
// agent run live over protocol v2 (docs/PROTOCOL.md §3.8): subprotocol
// dashstream.v2, JSON records (the gateway decodes the records, zstd
// frames included), a thread filter, and join:"checkpoint" so that a run
// opened mid-way starts from its latest full state. The run's earlier
// events (node states, timeline, calls) come from its history,
// GET /api/threads/{thread_id}/records (§3.9).
//
// Reconnects resume from the cursor (the last offset applied per
// partition); a reload resumes from the cursor saved in sessionStorage
// together with the model it describes (one JSON value, written between
// two records, so the two always agree): nothing is lost, nothing applied
// twice.
"use strict";
(() => {
  const R = globalThis.DashStreamRun, UI = globalThis.DashStreamUI;
  const SUBPROTOCOL = "dashstream.v2";
  const PING_EVERY = 20, SILENT_MAX_MS = 50000, MAX_LOG = 200, HISTORY_PAGE = 500, HISTORY_PAGES = 40;
  const $ = (id) => document.getElementById(id);
  const thread = new URLSearchParams(location.search).get("thread") || "";

  const st = {
    namespace: null,
    model: new R.RunModel(thread),
    cursor: {},            // partition -> last applied offset (decimal string)
    joined: false,         // a replay_complete was received: the cursor is a place to resume from
    ws: null, conn: "connecting", backoff: 500, lastRx: 0, retryTimer: 0, ticks: 0,
    reconnects: 0, violations: 0, resumes: [], liveRecords: 0,
    history: "none",       // none, loading, done, unavailable
    bridging: false,       // the state is being read from the history; live records wait in buffer
    buffer: [],
    dirty: true, saveDue: false, renderedAt: 0,
  };

  // ---- persistence ----------------------------------------------------------

  function storeKey() { return "dashstream.run:" + (st.namespace || "unknown") + ":" + thread; }

  function save() {
    st.saveDue = false;
    if (!st.joined || st.bridging) return; // nothing consistent to resume from yet: a reload joins again
    try {
      sessionStorage.setItem(storeKey(), JSON.stringify({ cursor: st.cursor, model: st.model, savedAt: Date.now() }));
    } catch (_) { /* quota or private mode: reconnects still resume in memory */ }
  }

  function restore() {
    try {
      const saved = JSON.parse(sessionStorage.getItem(storeKey()) || "null");
      if (!saved || !saved.model || saved.model.thread !== thread) return false;
      st.model = R.RunModel.restore(saved.model);
      st.cursor = UI.cleanOffsets(saved.cursor);
      st.joined = true;
      return true;
    } catch (_) {
      return false;
    }
  }

  // ---- connection -------------------------------------------------------------

  function token() { return sessionStorage.getItem("dashstream.token") || ""; }

  // resumeFrame joins the run at its latest full state the first time, and
  // resumes from the cursor once a join has completed.
  function resumeFrame() {
    const f = { type: "resume", format: "json", filter: { threads: [thread] } };
    if (st.joined) Object.assign(f, { from: "cursor", lastOffsetsByPartition: Object.assign({}, st.cursor) });
    else Object.assign(f, { from: "latest", join: "checkpoint", lastOffsetsByPartition: {} });
    if (st.namespace) f.namespace = st.namespace;
    return f;
  }

  function setConn(state, text) {
    st.conn = state;
    UI.showConn(state, text);
  }

  function connect() {
    st.retryTimer = 0;
    setConn("connecting", "connecting…");
    let ws;
    try {
      const t = token();
      ws = new WebSocket(UI.wsURL(), t ? [SUBPROTOCOL, "bearer", t] : [SUBPROTOCOL]);
    } catch (e) {
      logEvent("error", "cannot open WebSocket: " + e.message);
      scheduleReconnect();
      return;
    }
    st.ws = ws;
    ws.onopen = () => {
      if (st.ws !== ws) return;
      st.lastRx = Date.now();
      if (ws.protocol !== SUBPROTOCOL) {
        logEvent("error", "the gateway did not select " + SUBPROTOCOL + " (got " + JSON.stringify(ws.protocol) + "): the run view needs protocol v2");
        setConn("reconnecting", "no protocol v2");
        ws.onclose = null;
        ws.close();
        st.ws = null;
        st.retryTimer = setTimeout(connect, 10000);
        return;
      }
      const f = resumeFrame();
      ws.send(JSON.stringify(f));
      st.resumes.push(f);
      if (st.resumes.length > 20) st.resumes.shift();
      setConn("replaying", "replaying…");
      logEvent("resume", f.join ? "joining the run at its latest full state (join: checkpoint)"
        : "resume from cursor " + fmtOffsets(f.lastOffsetsByPartition));
    };
    ws.onmessage = (ev) => {
      if (st.ws !== ws) return;
      st.lastRx = Date.now();
      if (typeof ev.data === "string") onText(ev.data);
      else violation("binary frame on a JSON session");
    };
    ws.onclose = (ev) => {
      if (st.ws !== ws) return;
      logEvent(...UI.closeEvent(ev));
      drop();
    };
  }

  function drop() {
    const ws = st.ws;
    st.ws = null;
    UI.closeQuietly(ws);
    st.reconnects++;
    st.dirty = true;
    save();
    scheduleReconnect();
  }

  function scheduleReconnect() {
    UI.scheduleReconnect(st, setConn, reconnect);
  }

  // reconnect checks that the gateway still serves the same stream: under
  // another resume_namespace (a re-created topic) the cursor means nothing,
  // and the run is joined afresh.
  async function reconnect() {
    const before = st.namespace;
    await loadVersion();
    if (before && st.namespace && st.namespace !== before) {
      logEvent("stale", "the gateway's resume namespace changed (" + before + " → " + st.namespace + "): joining the run afresh");
      Object.assign(st, { model: new R.RunModel(thread), cursor: {}, joined: false, history: "none", buffer: [], bridging: false });
      graphKey = "";
    }
    connect();
  }

  // ---- frames -------------------------------------------------------------------

  function onText(data) {
    let m;
    try { m = JSON.parse(data); } catch (_) { violation("unparsable text frame"); return; }
    switch (m.type) {
      case "record": onRecord(m); break;
      case "pong": break;
      case "replay_complete": {
        for (const [p, o] of Object.entries(m.lastOffsetsByPartition || {})) {
          if (!(p in st.cursor) || BigInt(o) > BigInt(st.cursor[p])) st.cursor[p] = String(o);
        }
        st.joined = true;
        st.saveDue = true;
        st.backoff = 500;
        setConn("live", "live");
        logEvent("replay", "replay complete: " + m.totalReplayed + " records, mode " + m.mode + (m.capped ? " (capped: the rest follows)" : ""));
        // The history is read once the join is in, so that it reaches the
        // heads the live records continue from.
        if (st.model.state === null && !st.bridging) bridge();
        else if (st.history === "none") loadHistory();
        break;
      }
      case "gap":
        logEvent("gap", "GAP p" + m.partition + " " + m.fromOffset + ".." + m.toOffset + ": " + m.count + " records lost (" + m.reason + ")");
        break;
      case "skipped":
        accept(String(m.partition), String(m.offset));
        logEvent("skipped", "skipped p" + m.partition + "@" + m.offset + " (" + m.error_type + ")");
        break;
      case "cursor_stale":
        delete st.cursor[String(m.partition)];
        logEvent("stale", "cursor stale p" + m.partition + ": requested " + m.requested + ", oldest " + m.oldest);
        break;
      case "disconnect": logEvent("disconnect", "disconnected by the gateway: " + m.reason); break;
      case "error": logEvent("error", "error " + m.code + ": " + m.message); break;
      default: logEvent("info", "frame " + String(m.type));
    }
    st.dirty = true;
  }

  // accept moves the cursor to (p, o); false for an offset at or before it.
  function accept(p, o) {
    const prev = st.cursor[p];
    if (prev !== undefined && BigInt(o) <= BigInt(prev)) {
      violation("p" + p + "@" + o + " is not after the cursor " + prev + ": duplicate, dropped");
      return false;
    }
    st.cursor[p] = o;
    st.saveDue = true;
    return true;
  }

  function onRecord(m) {
    const p = String(m.partition), o = String(m.offset);
    if (!accept(p, o)) return;
    st.liveRecords++;
    const rec = { message: m.message };
    st.model.apply(rec, !st.bridging);
    if (st.bridging) st.buffer.push(rec);
    st.dirty = true;
  }

  function violation(text) {
    st.violations++;
    logEvent("violation", "protocol violation: " + text);
  }

  // ---- history --------------------------------------------------------------------

  function authHeaders() {
    const t = token();
    return t ? { Authorization: "Bearer " + t } : {};
  }

  // readHistory returns a model of the run's retained records from its
  // first sequence, applied in order (state included).
  async function readHistory(each) {
    const hs = new R.RunModel(thread);
    let after = "0";
    for (let page = 0; page < HISTORY_PAGES; page++) {
      const u = new URL("api/threads/" + encodeURIComponent(thread) + "/records", document.baseURI);
      u.search = new URLSearchParams({ after_sequence: after, limit: String(HISTORY_PAGE), format: "json" });
      const r = await fetch(u, { cache: "no-store", headers: authHeaders() });
      if (!r.ok) throw new Error("HTTP " + r.status);
      const body = await r.json();
      for (const rec of body.records || []) {
        if (!rec.message) continue;
        hs.apply({ message: rec.message }, true);
        if (each) each({ message: rec.message });
      }
      if (!body.next) break;
      after = body.next;
    }
    return hs;
  }

  // loadHistory fills in what happened before the join (node states,
  // timeline, calls) from the run's history; the state comes from the
  // socket.
  async function loadHistory() {
    st.history = "loading";
    try {
      const hs = await readHistory((rec) => st.model.apply(rec, false)); // events are keyed by sequence: no double
      st.history = "done";
      logEvent("info", "history: " + hs.records + " records of the run read from /api/threads");
    } catch (e) {
      st.history = "unavailable";
      logEvent("info", "history unavailable (" + e.message + "): showing what the socket delivers");
    }
    st.dirty = true;
  }

  // bridge gives the run the state its history reaches when the join did
  // not bring a full state (the run ended or went quiet, or the gateway
  // does not join): live records wait meanwhile, then those after the
  // history's last sequence advance the state.
  async function bridge() {
    st.bridging = true;
    try {
      st.history = "loading";
      const hs = await readHistory((rec) => st.model.apply(rec, false));
      st.history = "done";
      const upTo = hs.maxSeq;
      if (hs.state !== null && st.model.state === null) {
        Object.assign(st.model, { state: hs.state, stateSeq: hs.stateSeq, stateFrom: hs.stateFrom + " (history)", hash: hs.hash });
        const first = st.buffer.length ? Math.min(...st.buffer.map((r) => st.model.lastSeq(r)).filter((x) => x > 0)) : upTo + 1;
        if (first > upTo + 1) logEvent("error", "history ends at sequence " + upTo + ", live records start at " + first + ": state incomplete");
        for (const rec of st.buffer) if (st.model.lastSeq(rec) > upTo) st.model.apply(rec, true, true);
        logEvent("info", "no full state from the join: state read from the history up to sequence " + upTo);
      } else {
        for (const rec of st.buffer) st.model.apply(rec, true, true);
      }
    } catch (e) {
      st.history = "unavailable";
      logEvent("error", "no full state from the join and no history (" + e.message + ")");
      for (const rec of st.buffer) st.model.apply(rec, true, true);
    }
    st.buffer = [];
    st.bridging = false;
    st.saveDue = true;
    st.dirty = true;
  }

  // ---- rendering ------------------------------------------------------------------

  function logEvent(kind, text) { UI.logEvent(kind, text, MAX_LOG); }

  function fmtOffsets(m) {
    const ps = Object.keys(m).sort((a, b) => Number(a) - Number(b));
    return ps.map((p) => "p" + p + "@" + m[p]).join(" ") || "(none)";
  }

  function el(tag, attrs, ...kids) {
    const e = tag.startsWith("svg:") ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4)) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    e.append(...kids);
    return e;
  }

  // layout places nodes in columns by their distance from the entry point
  // (edges back to an earlier column are loops).
  function layout(g) {
    const names = (g.nodes || []).map((n) => n.name);
    const depth = {};
    const start = g.entry_point && names.includes(g.entry_point) ? g.entry_point : names[0];
    const queue = start ? [start] : [];
    if (start) depth[start] = 0;
    while (queue.length) {
      const n = queue.shift();
      for (const e of g.edges || []) {
        if (e.from === n && names.includes(e.to) && depth[e.to] === undefined) { depth[e.to] = depth[n] + 1; queue.push(e.to); }
      }
    }
    let maxD = Math.max(0, ...Object.values(depth));
    for (const n of names) if (depth[n] === undefined) depth[n] = ++maxD;
    const cols = {};
    for (const n of names) (cols[depth[n]] ||= []).push(n);
    const pos = {};
    for (const [d, ns] of Object.entries(cols)) ns.forEach((n, i) => { pos[n] = { x: 20 + Number(d) * 190, y: 30 + i * 80 }; });
    const rows = Math.max(1, ...Object.values(cols).map((c) => c.length));
    return { pos, width: 20 + (maxD + 1) * 190, height: 60 + rows * 80 };
  }

  const NW = 150, NH = 44;
  let graphKey = "";

  function renderGraph() {
    const m = st.model, g = m.graph, box = $("graph");
    if (!g) return;
    const key = JSON.stringify(g);
    if (key !== graphKey) {
      graphKey = key;
      const { pos, width, height } = layout(g);
      const svg = el("svg:svg", { width, height: height + 20, viewBox: "0 0 " + width + " " + (height + 20), role: "img", "aria-label": "graph " + (g.name || "") });
      svg.append(el("svg:defs", {}, el("svg:marker", { id: "arrow", viewBox: "0 0 10 10", refX: "10", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto" },
        el("svg:path", { d: "M0,0 L10,5 L0,10 z" }))));
      for (const e of g.edges || []) {
        const a = pos[e.from], b = pos[e.to];
        if (!a || !b) continue;
        let d, lx, ly;
        if (b.x > a.x) {
          d = `M${a.x + NW},${a.y + NH / 2} C${a.x + NW + 30},${a.y + NH / 2} ${b.x - 30},${b.y + NH / 2} ${b.x},${b.y + NH / 2}`;
          lx = (a.x + NW + b.x) / 2; ly = (a.y + b.y) / 2 + NH / 2 - 4;
        } else { // a loop back: below the nodes
          const low = Math.max(a.y, b.y) + NH + 18;
          d = `M${a.x + NW / 2},${a.y + NH} C${a.x + NW / 2},${low} ${b.x + NW / 2},${low} ${b.x + NW / 2},${b.y + NH}`;
          lx = (a.x + b.x + NW) / 2; ly = low + 2;
        }
        svg.append(el("svg:path", { d, class: "edge edge-" + (e.edge_type || "direct"), "marker-end": "url(#arrow)", "data-from": e.from, "data-to": e.to }));
        if (e.label) svg.append(el("svg:text", { x: lx, y: ly, class: "edge-label", "text-anchor": "middle" }, e.label));
      }
      for (const n of g.nodes || []) {
        const p = pos[n.name];
        svg.append(el("svg:g", { class: "node pending", "data-node": n.name, "data-state": "pending", transform: `translate(${p.x},${p.y})` },
          el("svg:title", {}, n.name), el("svg:rect", { width: NW, height: NH, rx: 6 }),
          el("svg:text", { x: 10, y: 18 }, n.name.length > 20 ? n.name.slice(0, 19) + "…" : n.name),
          el("svg:text", { x: 10, y: 34, class: "kind" }, (n.node_type || "") + (n.tool ? " · " + n.tool : ""))));
      }
      box.replaceChildren(svg);
    }
    for (const gn of box.querySelectorAll("g.node")) {
      const s = m.nodes[gn.dataset.node];
      const state = s ? s.status : "pending";
      if (gn.dataset.state !== state) {
        gn.dataset.state = state;
        gn.setAttribute("class", "node " + state);
      }
      const title = gn.querySelector("title");
      const t = gn.dataset.node + ": " + state + (s && s.visits > 1 ? " (" + s.visits + " visits)" : "");
      if (title.textContent !== t) title.textContent = t;
    }
  }

  function renderHash() {
    const h = st.model.hash, last = h.lastDiff || h.last, e = $("hash");
    let text = "—", match = "none", detail = "no state_hash checked yet";
    if (last) {
      match = h.mismatches ? "mismatch" : "match";
      text = (h.mismatches ? "✗ mismatch" : "✓ match") + " " + last.computed.slice(0, 12);
      detail = h.checks + " checks, " + h.mismatches + " mismatches · last: " + last.what + " at seq " + last.seq +
        (last.match ? "" : " (expected " + last.expected.slice(0, 12) + ")");
    }
    if (e.textContent !== text) e.textContent = text;
    e.dataset.match = match;
    e.title = last ? "computed " + last.computed + "\nexpected " + last.expected : "";
    $("hash-detail").textContent = detail;
  }

  function renderState() {
    const m = st.model;
    const text = m.state === null ? "(no full state yet)" : JSON.stringify(m.state, null, 2);
    const pre = $("state");
    if (pre.textContent !== text) pre.textContent = text;
    pre.dataset.seq = String(m.stateSeq);
    $("state-from").textContent = m.state === null ? "" : "at sequence " + m.stateSeq + " · from " + (m.stateFrom || "?") +
      (m.stateErrors.length ? " · " + m.stateErrors.length + " errors: " + m.stateErrors.at(-1) : "");
  }

  function renderLLM() {
    const calls = Object.entries(st.model.llm).sort((a, b) => b[1].seq - a[1].seq).slice(0, 12);
    const box = $("llm");
    const key = JSON.stringify(calls);
    if (box.dataset.key === key) return;
    box.dataset.key = key;
    box.replaceChildren(...calls.map(([id, c]) => {
      const text = Object.keys(c.chunks).sort((a, b) => a - b).map((k) => c.chunks[k]).join("");
      return el("div", { class: "llm-call" + (c.final ? "" : " streaming"), "data-request": id, "data-node": c.node || "" },
        el("div", { class: "muted small" }, (c.node || "?") + " · " + (c.model || "") + " · " + id +
          " · " + Object.keys(c.chunks).length + " chunks" + (c.final ? " · " + (c.finish || "final") : " · streaming")),
        el("div", { class: "text" }, text));
    }));
  }

  function renderTools() {
    const calls = Object.entries(st.model.tools).sort((a, b) => b[1].seq - a[1].seq);
    const tb = $("tools");
    const key = JSON.stringify(calls);
    if (tb.dataset.key === key) return;
    tb.dataset.key = key;
    tb.replaceChildren(...calls.map(([id, t]) => el("tr", { "data-call": id, "data-stage": t.stage },
      el("td", { title: id }, t.tool), el("td", { class: "status-" + (t.stage === "FAILED" ? "failed" : t.stage === "COMPLETED" ? "done" : "running") }, t.stage),
      el("td", { class: "wrap" }, t.args), el("td", { class: "wrap" + (t.error ? " bad" : "") }, t.error || t.result))));
  }

  function renderTimeline() {
    const tl = st.model.timeline.slice(-150).reverse();
    const tb = $("timeline");
    const key = tl.length + ":" + (tl[0] ? tl[0].seq : "") + ":" + st.model.timeline.length;
    if (tb.dataset.key === key) return;
    tb.dataset.key = key;
    tb.replaceChildren(...tl.map((e) => el("tr", { "data-seq": String(e.seq), "data-kind": e.kind },
      el("td", { class: "num" }, String(e.seq)), el("td", {}, e.ts ? new Date(e.ts).toLocaleTimeString() : ""),
      el("td", {}, e.node), el("td", { class: "summary", title: e.text }, e.text))));
  }

  function render() {
    const now = Date.now();
    if (!st.dirty || now - st.renderedAt < 150) return;
    st.dirty = false;
    st.renderedAt = now;
    const m = st.model;
    $("run-records").textContent = String(m.records);
    $("run-seq").textContent = String(m.maxSeq);
    $("run-reconnects").textContent = String(st.reconnects);
    const s = $("run-status");
    s.textContent = m.status;
    s.dataset.status = m.status;
    $("run-live").hidden = !(m.status === "running" && st.conn === "live");
    $("run-graph").textContent = (m.graphName || (m.graph && m.graph.name) || "") + (m.graph && m.graph.version ? " v" + m.graph.version : "");
    renderGraph();
    renderHash();
    renderState();
    renderLLM();
    renderTools();
    renderTimeline();
  }

  function tick() {
    if (st.saveDue) save();
    st.ticks++;
    const ws = st.ws;
    if (ws && ws.readyState === WebSocket.OPEN) {
      if (st.ticks % PING_EVERY === 0) ws.send('{"type":"ping"}');
      if (Date.now() - st.lastRx > SILENT_MAX_MS) {
        logEvent("disconnect", "no frame from the gateway for " + SILENT_MAX_MS / 1000 + " s: reconnecting");
        drop();
      }
    }
  }

  async function loadVersion() {
    try {
      const r = await fetch("version", { cache: "no-store" });
      const v = await r.json();
      st.namespace = v.resume_namespace || null;
      $("version").textContent = UI.versionLine(v, st.namespace);
    } catch (_) {
      if (!st.namespace) $("version").textContent = "version unavailable";
    }
  }

  // Read-only view for end-to-end tests and debugging from the console.
  Object.defineProperty(window, "__dashstreamRun", { value: Object.freeze({
    get socket() { return st.ws; },
    snapshot() {
      const m = st.model;
      return {
        thread, conn: st.conn, joined: st.joined, bridging: st.bridging, cursor: Object.assign({}, st.cursor), reconnects: st.reconnects,
        violations: st.violations, history: st.history, storageKey: storeKey(), records: m.records, liveRecords: st.liveRecords,
        status: m.status, graph: m.graph ? m.graph.name : null, nodes: JSON.parse(JSON.stringify(m.nodes)),
        hash: JSON.parse(JSON.stringify(m.hash)), stateSeq: m.stateSeq, stateFrom: m.stateFrom, stateHash: m.state === null ? null : R.stateHash(m.state),
        stateErrors: m.stateErrors.slice(), maxSeq: m.maxSeq, llm: Object.keys(m.llm).length, tools: Object.keys(m.tools).length,
      };
    },
    resumes() { return JSON.parse(JSON.stringify(st.resumes)); },
    sequences() { return [...st.model.seen].sort((a, b) => a - b); },
  }) });

  $("run-thread").textContent = thread || "(none: add ?thread=<thread_id> to the address)";
  document.title = "Run " + thread + " · DashStream gateway";
  window.addEventListener("pagehide", save);
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "hidden") save(); });
  setInterval(tick, 1000);
  (function frame() { render(); requestAnimationFrame(frame); })();
  if (!thread) {
    setConn("reconnecting", "no run chosen");
    return;
  }
  loadVersion().then(() => {
    if (restore()) logEvent("info", "restored the run and its cursor from this tab's session: resuming");
    st.dirty = true;
    connect();
  });
})();
