// Built-in DashStream gateway UI: streams /ws, shows live records (decoded
// headers: message type, thread, sequence), the agent runs they belong to,
// and the protocol's control messages; resumes from its last cursor after a
// reconnect or a page reload (the cursor is kept in localStorage per
// resume_namespace of the gateway).
// Offsets stay decimal strings end to end (int64 on the server); they are
// compared as BigInt.
"use strict";
(() => {
  const D = globalThis.DashStreamDecode, UI = globalThis.DashStreamUI;
  const MAX_ROWS = 100, MAX_LOG = 200, MAX_THREADS = 500, SHOWN_THREADS = 20, THREAD_ROWS = 50;
  const SEEN_MAX = 5000;          // applied offsets kept per partition (test hook)
  const ACTIVE_MS = 60000;        // a run is active when it sent something this recently
  const PING_EVERY = 20, SILENT_MAX_MS = 50000;
  const STORE_PREFIX = "dashstream.cursor:", LEGACY_KEY = "dashstream.cursor";
  const THREAD_TEXT = 40, RENDER_EVERY_MS = 100, REPLAY_RENDER_EVERY_MS = 500;
  const $ = (id) => document.getElementById(id);

  const st = {
    namespace: null,      // resume_namespace of this gateway (/version)
    cursor: {},           // partition -> last applied offset (decimal string)
    seen: new Map(),      // partition -> recent applied offsets, in order
    counts: new Map(),    // partition -> records received by this page
    total: 0, bytes: 0, lastTotal: 0, reconnects: 0, ticks: 0,
    alerts: { gaps: 0, stale: 0, skipped: 0, violations: 0 },
    pending: null,        // cursor frame waiting for its binary frame
    rows: [],             // newest first
    threads: new Map(),   // thread id -> run summary, in order of first appearance
    filter: null,         // thread id whose records are shown, or null
    ws: null, conn: "connecting", backoff: 500, lastRx: 0, retryTimer: 0, resumedAt: 0, renderedAt: 0,
    sent: [],             // resume frames sent (newest last)
    dirty: true, saveDue: false,
    startLatest: false,   // the next resume asks for from:"latest"
  };

  // ---- cursor persistence -------------------------------------------------

  function storeKey() { return STORE_PREFIX + (st.namespace || "unknown"); }

  function loadCursor() {
    let saved = null;
    try {
      saved = JSON.parse(localStorage.getItem(storeKey()) || "null");
      if (!saved) { // the single key of earlier versions, when it is ours
        const old = JSON.parse(localStorage.getItem(LEGACY_KEY) || "null");
        if (old && old.namespace === st.namespace) saved = old;
        localStorage.removeItem(LEGACY_KEY);
      }
    } catch (_) { /* corrupt storage: start fresh */ }
    st.cursor = UI.cleanOffsets(saved && saved.offsets);
  }

  function saveCursor() { saveCursorAs(st.namespace); }

  function saveCursorAs(namespace) {
    st.saveDue = false;
    try {
      localStorage.setItem(STORE_PREFIX + (namespace || "unknown"),
        JSON.stringify({ namespace, offsets: st.cursor, savedAt: Date.now() }));
    } catch (_) { /* private mode or quota: the in-memory cursor still works */ }
  }

  function forgetCursor() {
    st.cursor = {};
    st.seen.clear();
    st.startLatest = true;
    saveCursor();
  }

  // ---- connection -------------------------------------------------------------

  // authToken is the client token when the gateway requires one: given once
  // as #token=… in the page URL (a fragment never reaches the server or its
  // logs), then kept in sessionStorage and removed from the address bar. It
  // travels as the "bearer" WebSocket subprotocol, the idiom browsers allow.
  function authToken() {
    const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
    if (m) {
      sessionStorage.setItem("dashstream.token", decodeURIComponent(m[1]));
      history.replaceState(null, "", location.pathname + location.search);
    }
    return sessionStorage.getItem("dashstream.token") || "";
  }

  // resumeFrame lists our cursors: with none, the gateway replays its recent
  // window (the last records of every partition), then goes live. "Start
  // from now" without a connection, or ?from=latest in the page's URL, asks
  // for no history at all.
  function resumeFrame() {
    const f = st.startLatest
      ? { type: "resume", from: "latest", lastOffsetsByPartition: {} }
      : { type: "resume", from: "cursor", lastOffsetsByPartition: Object.assign({}, st.cursor) };
    if (st.namespace) f.namespace = st.namespace;
    return f;
  }

  function setConn(state, text) {
    st.conn = state;
    UI.showConn(state, text);
  }

  // reconnect checks that the gateway still serves the same stream (a
  // restart may point it at another cluster or topic) and connects.
  async function reconnect() {
    st.retryTimer = 0;
    setConn("connecting", "connecting…");
    const before = st.namespace;
    await loadVersion();
    if (st.namespace !== before && st.namespace) {
      saveCursorAs(before);
      loadCursor();
      st.seen.clear();
      logEvent("stale", "the gateway's resume namespace changed (" + before + " → " + st.namespace + "): using the cursor saved for it");
    }
    connect();
  }

  function connect() {
    st.retryTimer = 0;
    setConn("connecting", "connecting…");
    let ws;
    try {
      const token = authToken();
      ws = token ? new WebSocket(UI.wsURL(), ["bearer", token]) : new WebSocket(UI.wsURL());
    } catch (e) {
      logEvent("error", "cannot open WebSocket: " + e.message);
      scheduleReconnect();
      return;
    }
    ws.binaryType = "arraybuffer";
    st.ws = ws;
    st.pending = null;
    ws.onopen = () => {
      if (st.ws !== ws) return;
      st.lastRx = Date.now();
      const f = resumeFrame();
      ws.send(JSON.stringify(f));
      st.sent.push(f);
      if (st.sent.length > 20) st.sent.shift();
      st.resumedAt = performance.now();
      setConn("replaying", "replaying…");
      const n = Object.keys(f.lastOffsetsByPartition).length;
      logEvent("resume", f.from === "latest" ? "resume sent: from latest, no history"
        : n === 0
        ? "resume sent: no cursor yet, replaying the gateway's recent window"
        : "resume sent from cursor: " + fmtOffsets(f.lastOffsetsByPartition));
    };
    ws.onmessage = (ev) => {
      if (st.ws !== ws) return;
      st.lastRx = Date.now();
      if (typeof ev.data === "string") onText(ev.data); else onBinary(ev.data);
    };
    ws.onclose = (ev) => {
      if (st.ws !== ws) return;
      logEvent(...UI.closeEvent(ev));
      drop();
    };
  }

  // drop forgets the current socket and schedules a reconnect.
  function drop() {
    const ws = st.ws;
    st.ws = null;
    st.pending = null;
    UI.closeQuietly(ws);
    st.reconnects++;
    st.dirty = true;
    saveCursor();
    scheduleReconnect();
  }

  function scheduleReconnect() {
    UI.scheduleReconnect(st, setConn, reconnect);
  }

  // ---- frames -------------------------------------------------------------------

  function onText(data) {
    let m;
    try { m = JSON.parse(data); } catch (_) { violation("unparsable text frame"); return; }
    switch (m.type) {
      case "cursor":
        if (st.pending) violation("two cursor frames in a row (p" + st.pending.p + "@" + st.pending.o + ")");
        st.pending = { p: String(m.partition), o: String(m.offset) };
        break;
      case "pong": break;
      case "replay_complete": onReplayComplete(m); break;
      case "skipped":
        st.alerts.skipped++;
        accept(String(m.partition), String(m.offset));
        logEvent("skipped", "skipped p" + m.partition + "@" + m.offset + ": dead-lettered (" + m.error_type + "), not a gap");
        break;
      case "gap": {
        st.alerts.gaps++;
        const sev = ["info", "warning", "critical"].includes(m.severity) ? m.severity : "critical";
        logEvent("gap-" + sev, "GAP p" + m.partition + " " + m.fromOffset + ".." + m.toOffset + ": " + m.count +
          " records lost (" + m.reason + ")" + (m.message ? " · " + m.message : ""));
        break;
      }
      case "cursor_stale":
        // Our cursor means nothing here any more: what follows for this
        // partition starts a new sequence of offsets.
        st.alerts.stale++;
        delete st.cursor[String(m.partition)];
        st.seen.delete(String(m.partition));
        st.saveDue = true;
        logEvent("stale", "cursor stale p" + m.partition + ": requested " + m.requested + ", oldest retained " + m.oldest +
          (m.message ? " · " + m.message : ""));
        break;
      case "cursor_reset_complete": onReset(m); break;
      case "disconnect":
        logEvent("disconnect", "disconnected by the gateway: " + m.reason + (m.message ? " · " + m.message : ""));
        break;
      case "error": logEvent("error", "error " + m.code + ": " + m.message); break;
      default: logEvent("info", "frame " + String(m.type));
    }
    st.dirty = true;
  }

  function onReplayComplete(m) {
    const heads = m.lastOffsetsByPartition || {};
    // Partitions we hold no cursor for continue from what we were told.
    for (const p of Object.keys(heads)) {
      if (!(p in st.cursor)) st.cursor[p] = String(heads[p]);
    }
    st.saveDue = true;
    st.startLatest = false;
    setConn("live", "live");
    st.backoff = 500;
    pollHealth(); // the gateway counts us now
    const secs = ((performance.now() - st.resumedAt) / 1000).toFixed(1);
    logEvent("replay", "replay complete: " + m.totalReplayed + " records in " + secs + " s, mode " + m.mode +
      (m.capped ? " (capped: the rest follows as catch-up)" : ""));
  }

  function onReset(m) {
    st.cursor = {};
    st.seen.clear();
    const latest = m.latestOffsetsByPartition || {};
    for (const p of Object.keys(latest)) st.cursor[p] = String(latest[p]);
    saveCursor();
    logEvent("info", "cursor reset: continuing from now (" + fmtOffsets(st.cursor) + ")");
  }

  // accept applies offset o of partition p to the cursor; an offset that is
  // not after the cursor is a duplicate (or regression): reported, dropped.
  function accept(p, o) {
    let ob;
    try { ob = BigInt(o); } catch (_) { violation("non-numeric offset " + JSON.stringify(o) + " on p" + p); return false; }
    const prev = st.cursor[p];
    if (prev !== undefined && ob <= BigInt(prev)) {
      violation("p" + p + "@" + o + " is not after the cursor " + prev + ": duplicate or regression, dropped");
      return false;
    }
    st.cursor[p] = o;
    let seen = st.seen.get(p);
    if (!seen) st.seen.set(p, (seen = []));
    seen.push(o);
    if (seen.length > SEEN_MAX) seen.splice(0, seen.length - SEEN_MAX);
    st.saveDue = true;
    return true;
  }

  function violation(text) {
    st.alerts.violations++;
    logEvent("violation", "protocol violation: " + text);
  }

  function onBinary(buf) {
    const c = st.pending;
    st.pending = null;
    if (!c) { violation("binary frame without a cursor"); return; }
    if (!accept(c.p, c.o)) return;
    const bytes = new Uint8Array(buf);
    const info = D.decode(bytes);
    st.counts.set(c.p, (st.counts.get(c.p) || 0) + 1);
    st.total++;
    st.bytes += bytes.length;
    // When it happened: the producer's header timestamp (never in the
    // future), else when it arrived (zstd records are not decoded).
    const now = Date.now(), produced = producerMs(info.tsUs);
    const row = { t: produced ? Math.min(produced, now) : now, produced: !!produced, rx: now, p: c.p, o: c.o, n: bytes.length, info };
    st.rows.unshift(row);
    if (st.rows.length > MAX_ROWS) st.rows.length = MAX_ROWS;
    if (info.inner) {
      for (const e of info.inner) touchThread(e.thread, e.seq, "event_batch", D.EVENT_TYPES[e.eventType] || "", e.eventType, row, c.p);
    } else if (info.thread) {
      touchThread(info.thread, info.seq, info.type, info.detail, info.eventType, row, c.p);
    }
    st.dirty = true;
  }

  // touchThread updates the run summary of a thread (an agent run).
  function touchThread(id, seq, type, detail, eventType, row, p) {
    let t = st.threads.get(id);
    if (!t) {
      if (st.threads.size >= MAX_THREADS) evictThread();
      t = { id, count: 0, seq: "0", status: "running", errors: 0, last: 0, activity: "", partition: p, rows: [] };
      st.threads.set(id, t); // the map stays in order of first appearance
    }
    t.last = Math.max(t.last, row.t);
    t.partition = p;
    if (BigInt(seq) > BigInt(t.seq)) t.seq = seq;
    t.activity = type === "event" || type === "event_batch" ? detail : type + (detail ? " · " + detail : "");
    if (eventType === 1) t.status = "running";
    else if (eventType === 2) t.status = "done";
    else if (eventType === 3) t.status = "failed";
    if (type === "error" || [3, 12, 32, 42].includes(eventType) || (type === "tool_execution" && / FAILED/.test(detail))) t.errors++;
    if (t.rows[0] !== row) { // a batch can hold several events of one run
      t.count++;
      t.rows.unshift(row);
      if (t.rows.length > THREAD_ROWS) t.rows.length = THREAD_ROWS;
    }
  }

  // evictThread forgets the run that has been quiet the longest.
  function evictThread() {
    let quiet = null;
    for (const t of st.threads.values()) if (!quiet || t.last < quiet.last) quiet = t;
    st.threads.delete(quiet.id);
    if (st.filter === quiet.id) st.filter = null;
  }

  // ---- rendering ------------------------------------------------------------------

  function logEvent(kind, text) { UI.logEvent(kind, text, MAX_LOG); }

  // syncRows keeps n rows in tbody and lets fill update each in place:
  // rows are reused, not rebuilt, so a row under the pointer stays put.
  function syncRows(tbody, n, fill) {
    while (tbody.rows.length > n) tbody.lastElementChild.remove();
    while (tbody.rows.length < n) tbody.appendChild(document.createElement("tr"));
    for (let i = 0; i < n; i++) fill(tbody.rows[i]);
  }

  // setCell sets cell k of tr (cells are filled in order), touching the DOM
  // only where something changed.
  function setCell(tr, k, text, cls, title) {
    const td = tr.cells[k] || tr.appendChild(document.createElement("td"));
    if (td.textContent !== text) td.textContent = text;
    if (td.className !== (cls || "")) td.className = cls || "";
    if (td.title !== (title || "")) td.title = title || "";
  }

  function short(s, n) { return s.length > n ? s.slice(0, n - 1) + "…" : s; }

  function fmtOffsets(m) {
    const ps = Object.keys(m).sort((a, b) => Number(a) - Number(b));
    const s = ps.slice(0, 8).map((p) => "p" + p + "@" + m[p]).join(" ");
    return ps.length > 8 ? s + " … (" + ps.length + " partitions)" : s || "(none)";
  }

  function fmtAge(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    return s < 60 ? s + " s" : s < 3600 ? Math.floor(s / 60) + " min" : Math.floor(s / 3600) + " h";
  }

  // producerMs turns a header timestamp_us into ms since the epoch (0: none).
  function producerMs(us) {
    if (!us || us === "0") return 0;
    const ms = Number(BigInt(us) / 1000n);
    return ms > 0 && ms < 8.64e15 ? ms : 0;
  }

  function renderRecords() {
    const t = st.filter && st.threads.get(st.filter);
    if (st.filter && !t) st.filter = null;
    const title = st.filter ? "Records of thread " + short(st.filter, 60) : "Last records";
    if ($("records-title").textContent !== title) $("records-title").textContent = title;
    $("clear-filter").hidden = !st.filter;
    const rows = t ? t.rows : st.rows;
    let k = 0;
    syncRows($("records"), rows.length, (tr) => {
      const r = rows[k++], i = r.info;
      Object.assign(tr.dataset, { partition: r.p, offset: r.o, type: i.type, framing: i.framing, thread: i.thread, seq: i.seq });
      setCell(tr, 0, new Date(r.t).toLocaleTimeString(), r.produced ? "" : "muted",
        (r.produced ? "produced " + new Date(r.t).toISOString() + ", " : "not decoded: ") + "received " + new Date(r.rx).toISOString());
      setCell(tr, 1, r.p, "num");
      setCell(tr, 2, r.o, "num");
      if (i.framing === "invalid") setCell(tr, 3, "invalid", "bad");
      else if (!i.type) setCell(tr, 3, i.framing, "muted", "compressed: the browser does not decode zstd");
      else setCell(tr, 3, i.type, "type type-" + i.type);
      const threads = i.threads.length > 1 ? i.threads.length + " threads" : i.thread;
      setCell(tr, 4, short(threads, THREAD_TEXT), "mono", i.threads.join("\n"));
      setCell(tr, 5, i.seq === "0" ? "" : i.seq, "num");
      setCell(tr, 6, i.error || i.detail, i.error ? "summary bad" : "summary", i.error || i.detail);
      setCell(tr, 7, String(r.n), "num");
    });
  }

  // renderThreads lists the runs newest first (by first record seen), so
  // rows only move when a run starts.
  function renderThreads(now) {
    const list = [...st.threads.values()].slice(-SHOWN_THREADS).reverse();
    let k = 0;
    syncRows($("threads"), list.length, (tr) => {
      const t = list[k++];
      tr.className = "thread" + (st.filter === t.id ? " selected" : "");
      tr.dataset.thread = t.id;
      tr.tabIndex = 0;
      setCell(tr, 0, short(t.id, THREAD_TEXT), "mono", t.id + " (partition " + t.partition + ")");
      setCell(tr, 1, t.status + (t.errors ? " · " + t.errors + " err" : ""), "status-" + t.status + (t.errors ? " has-errors" : ""));
      setCell(tr, 2, String(t.count), "num");
      setCell(tr, 3, t.seq === "0" ? "" : t.seq, "num");
      setCell(tr, 4, t.activity, "summary", t.activity);
      setCell(tr, 5, fmtAge(now - t.last), "num");
    });
  }

  function renderPartitions() {
    const ps = [...new Set([...st.counts.keys(), ...Object.keys(st.cursor)])].sort((a, b) => Number(a) - Number(b));
    let k = 0;
    syncRows($("partitions"), ps.length, (tr) => {
      const p = ps[k++];
      tr.dataset.partition = p;
      setCell(tr, 0, p);
      setCell(tr, 1, String(st.counts.get(p) || 0), "num");
      setCell(tr, 2, st.cursor[p] ?? "", "num");
    });
  }

  // render runs at most RENDER_EVERY_MS apart (less often while a replay
  // streams in): thousands of replayed records are not slowed down by
  // redrawing the tables for each animation frame.
  function render() {
    const now = Date.now();
    const every = st.conn === "replaying" ? REPLAY_RENDER_EVERY_MS : RENDER_EVERY_MS;
    if (!st.dirty || now - st.renderedAt < every) return;
    st.dirty = false;
    st.renderedAt = now;
    $("total").textContent = st.total.toLocaleString();
    $("bytes").textContent = st.bytes.toLocaleString();
    $("reconnects").textContent = String(st.reconnects);
    let active = 0;
    for (const t of st.threads.values()) if (now - t.last < ACTIVE_MS) active++;
    $("runs").textContent = active + " / " + st.threads.size;
    const a = st.alerts;
    const al = $("alerts");
    al.textContent = a.gaps + " · " + a.stale + " · " + a.skipped + " · " + a.violations;
    al.className = "big" + (a.gaps || a.violations ? " bad" : a.stale || a.skipped ? " warn" : "");
    renderRecords();
    renderThreads(now);
    renderPartitions();
  }

  function tick() {
    $("rate").textContent = String(st.total - st.lastTotal);
    st.lastTotal = st.total;
    if (st.saveDue) saveCursor();
    st.ticks++;
    st.dirty = true; // ages move on
    const ws = st.ws;
    if (ws && ws.readyState === WebSocket.OPEN) {
      if (st.ticks % PING_EVERY === 0) ws.send('{"type":"ping"}');
      if (Date.now() - st.lastRx > SILENT_MAX_MS) {
        logEvent("disconnect", "no frame from the gateway for " + SILENT_MAX_MS / 1000 + " s: reconnecting");
        drop();
      }
    }
  }

  async function fetchJSON(path, ms) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), ms);
    try {
      const r = await fetch(path, { cache: "no-store", signal: ctl.signal });
      return await r.json();
    } finally {
      clearTimeout(timer);
    }
  }

  async function pollHealth() {
    try {
      const h = await fetchJSON("health", 4000);
      $("health").textContent = h.status + " · kafka " + h.kafka_status + " · " + h.websocket_status + (h.alert ? " · ⚠ " + h.alert : "");
    } catch (_) {
      $("health").textContent = "health unavailable";
    }
  }

  async function loadVersion() {
    try {
      const v = await fetchJSON("version", 3000);
      st.namespace = v.resume_namespace || null;
      $("version").textContent = UI.versionLine(v, st.namespace);
    } catch (_) {
      // Keep what we knew: the stream works without /version.
      if (!st.namespace) $("version").textContent = "version unavailable";
    }
  }

  // ---- wiring ---------------------------------------------------------------------

  // "start from now": the gateway answers cursor_reset with its heads.
  $("reset").onclick = () => {
    if (st.ws && st.ws.readyState === WebSocket.OPEN) {
      st.ws.send('{"type":"cursor_reset"}');
    } else {
      forgetCursor();
      logEvent("info", "cursor forgotten: the next connection starts from now");
    }
  };
  function selectThread(tr) {
    if (!tr) return;
    st.filter = st.filter === tr.dataset.thread ? null : tr.dataset.thread;
    st.dirty = true;
  }
  $("threads").addEventListener("click", (ev) => selectThread(ev.target.closest("tr.thread")));
  $("threads").addEventListener("keydown", (ev) => { if (ev.key === "Enter") selectThread(ev.target.closest("tr.thread")); });
  $("clear-filter").onclick = () => { st.filter = null; st.dirty = true; };
  window.addEventListener("pagehide", saveCursor);
  window.addEventListener("beforeunload", saveCursor);
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "hidden") saveCursor(); });

  // Read-only view for end-to-end tests and debugging from the console.
  Object.defineProperty(window, "__dashstream", { value: Object.freeze({
    get socket() { return st.ws; },
    snapshot() {
      return {
        conn: st.conn, namespace: st.namespace, storageKey: storeKey(), cursor: Object.assign({}, st.cursor),
        counts: Object.fromEntries(st.counts), total: st.total, reconnects: st.reconnects,
        alerts: Object.assign({}, st.alerts), threads: st.threads.size, filter: st.filter,
      };
    },
    seen() { return Object.fromEntries([...st.seen].map(([p, a]) => [p, a.slice()])); },
    resumes() { return JSON.parse(JSON.stringify(st.sent)); },
  }) });

  setInterval(tick, 1000);
  setInterval(pollHealth, 5000);
  (function frame() { render(); requestAnimationFrame(frame); })();
  pollHealth();
  loadVersion().then(() => {
    if (new URLSearchParams(location.search).get("from") === "latest") forgetCursor();
    else loadCursor();
    st.dirty = true;
    connect();
  });
})();
