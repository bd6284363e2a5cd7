// Built-in DashStream gateway UI: streams /ws, shows live records and
// resumes from its last cursor after a reconnect (or a page reload).
// Offsets stay decimal strings end to end: they are int64 on the server.
"use strict";
(() => {
  const KINDS = { 1: "event", 2: "state_diff", 3: "token_chunk", 4: "tool_execution", 5: "checkpoint",
    6: "metrics", 7: "error", 8: "event_batch", 9: "execution_trace" };
  const MAX_ROWS = 50, MAX_EVENTS = 200, STORE_KEY = "dashstream.cursor";
  const $ = (id) => document.getElementById(id);

  const st = {
    cursor: loadCursor(),  // {namespace, offsets: {partition: "offset"}}
    namespace: null,       // resume_namespace of this gateway (/version)
    counts: new Map(),     // partition -> records received
    total: 0, bytes: 0, lastTotal: 0, reconnects: 0,
    pending: null,         // cursor frame waiting for its binary frame
    rows: [], ws: null, backoff: 500, dirty: false, saveDue: false,
  };

  function loadCursor() {
    try {
      const v = JSON.parse(localStorage.getItem(STORE_KEY) || "null");
      if (v && typeof v.offsets === "object" && v.offsets !== null) return v;
    } catch (_) { /* corrupt storage: start fresh */ }
    return { namespace: null, offsets: {} };
  }

  function saveCursor() {
    if (!st.cursor.namespace) st.cursor.namespace = st.namespace;
    try { localStorage.setItem(STORE_KEY, JSON.stringify(st.cursor)); } catch (_) { /* private mode */ }
  }

  function wsURL() {
    const u = new URL("ws", document.baseURI);
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    return u.toString();
  }

  function resumeFrame() {
    const offsets = st.cursor.offsets;
    if (Object.keys(offsets).length === 0) {
      return { type: "resume", from: "latest", lastOffsetsByPartition: {} };
    }
    const f = { type: "resume", from: "cursor", lastOffsetsByPartition: offsets };
    if (st.cursor.namespace) f.namespace = st.cursor.namespace;
    return f;
  }

  function setConn(text, cls) {
    const el = $("conn");
    el.textContent = text;
    el.className = "state " + cls;
  }

  function connect() {
    setConn("connecting…", "wait");
    const ws = new WebSocket(wsURL());
    ws.binaryType = "arraybuffer";
    st.ws = ws;
    st.pending = null;
    ws.onopen = () => {
      st.backoff = 500;
      setConn("live", "on");
      const f = resumeFrame();
      logEvent("resume from " + f.from + " (" + Object.keys(f.lastOffsetsByPartition).length + " partitions)");
      ws.send(JSON.stringify(f));
    };
    ws.onmessage = (ev) => (typeof ev.data === "string" ? onText(ev.data) : onBinary(ev.data));
    ws.onclose = (ev) => {
      if (st.ws !== ws) return;
      setConn("disconnected (" + ev.code + ")", "off");
      st.reconnects++;
      const delay = st.backoff * (0.5 + Math.random());
      st.backoff = Math.min(st.backoff * 2, 10000);
      setTimeout(connect, delay);
      st.dirty = true;
    };
  }

  function onText(data) {
    let m;
    try { m = JSON.parse(data); } catch (_) { logEvent("unparsable text frame"); return; }
    switch (m.type) {
      case "cursor": st.pending = { p: m.partition, o: m.offset }; break;
      case "pong": break;
      case "replay_complete": onReplayComplete(m); break;
      case "skipped": applied(m.partition, m.offset); logEvent("skipped p" + m.partition + "@" + m.offset + " (" + m.error_type + ", dead-lettered)"); break;
      case "gap": logEvent("GAP p" + m.partition + " " + m.fromOffset + ".." + m.toOffset + " (" + m.count + " records lost, " + m.reason + ")"); break;
      case "cursor_stale": logEvent("cursor stale p" + m.partition + ": requested " + m.requested + ", oldest " + m.oldest); break;
      case "cursor_reset_complete": onReset(m); break;
      case "disconnect": logEvent("disconnected by server: " + m.reason + " (" + (m.message || "") + ")"); break;
      case "error": logEvent("error " + m.code + ": " + m.message); break;
      default: logEvent("frame " + m.type);
    }
  }

  function onReplayComplete(m) {
    const heads = m.lastOffsetsByPartition || {};
    // Partitions we hold no cursor for start from the heads we were given.
    for (const p of Object.keys(heads)) {
      if (!(p in st.cursor.offsets)) st.cursor.offsets[p] = String(heads[p]);
    }
    st.cursor.namespace = st.namespace;
    st.saveDue = true;
    logEvent("replay complete: " + m.totalReplayed + " records, mode " + m.mode + (m.capped ? " (capped, catching up)" : ""));
  }

  function onReset(m) {
    st.cursor = { namespace: st.namespace, offsets: {} };
    const latest = m.latestOffsetsByPartition || {};
    for (const p of Object.keys(latest)) st.cursor.offsets[p] = String(latest[p]);
    saveCursor();
    logEvent("cursor reset: starting from now");
  }

  function applied(p, o) {
    st.cursor.offsets[String(p)] = String(o);
    st.saveDue = true;
  }

  function onBinary(buf) {
    const c = st.pending;
    st.pending = null;
    if (!c) { logEvent("binary frame without cursor (protocol error)"); return; }
    const bytes = new Uint8Array(buf);
    applied(c.p, c.o);
    st.counts.set(c.p, (st.counts.get(c.p) || 0) + 1);
    st.total++;
    st.bytes += bytes.length;
    st.rows.unshift({ t: new Date(), p: c.p, o: c.o, n: bytes.length, ...describe(bytes) });
    if (st.rows.length > MAX_ROWS) st.rows.length = MAX_ROWS;
    st.dirty = true;
  }

  // describe reads the framing byte and, for plain protobuf, the oneof field
  // number of DashStreamMessage (the message kind).
  function describe(b) {
    if (b.length === 0) return { framing: "empty", kind: "" };
    if (b[0] === 0x00) return { framing: "protobuf", kind: kindAt(b, 1) };
    if (b[0] === 0x01) return { framing: "zstd", kind: "" };
    if (b.length >= 4 && b[0] === 0x28 && b[1] === 0xb5 && b[2] === 0x2f && b[3] === 0xfd) return { framing: "legacy zstd", kind: "" };
    return { framing: "legacy", kind: kindAt(b, 0) };
  }

  function kindAt(b, i) {
    let tag = 0, shift = 0;
    for (; i < b.length && shift < 35; i++, shift += 7) {
      tag |= (b[i] & 0x7f) << shift;
      if ((b[i] & 0x80) === 0) return KINDS[tag >>> 3] || "field " + (tag >>> 3);
    }
    return "?";
  }

  function logEvent(text) {
    const li = document.createElement("li");
    li.textContent = new Date().toLocaleTimeString() + "  " + text;
    const ul = $("events");
    ul.prepend(li);
    while (ul.children.length > MAX_EVENTS) ul.lastChild.remove();
  }

  function cell(tr, text) {
    const td = document.createElement("td");
    td.textContent = text;
    tr.appendChild(td);
  }

  function render() {
    if (!st.dirty) return;
    st.dirty = false;
    $("total").textContent = st.total.toLocaleString();
    $("bytes").textContent = st.bytes.toLocaleString();
    $("reconnects").textContent = String(st.reconnects);
    const parts = $("partitions");
    parts.replaceChildren();
    const ps = new Set([...st.counts.keys()].map(String).concat(Object.keys(st.cursor.offsets)));
    for (const p of [...ps].sort((a, b) => Number(a) - Number(b))) {
      const tr = document.createElement("tr");
      cell(tr, p); cell(tr, String(st.counts.get(Number(p)) || 0)); cell(tr, st.cursor.offsets[p] ?? "");
      parts.appendChild(tr);
    }
    const rows = $("records");
    rows.replaceChildren();
    for (const r of st.rows) {
      const tr = document.createElement("tr");
      cell(tr, r.t.toLocaleTimeString()); cell(tr, String(r.p)); cell(tr, r.o);
      cell(tr, String(r.n)); cell(tr, r.framing); cell(tr, r.kind);
      rows.appendChild(tr);
    }
  }

  function tick() {
    $("rate").textContent = String(st.total - st.lastTotal);
    st.lastTotal = st.total;
    if (st.saveDue) { st.saveDue = false; saveCursor(); }
    st.ticks = (st.ticks || 0) + 1;
    if (st.ticks % 20 === 0 && st.ws && st.ws.readyState === WebSocket.OPEN) st.ws.send('{"type":"ping"}');
  }

  async function pollHealth() {
    try {
      const h = await (await fetch("health", { cache: "no-store" })).json();
      $("health").textContent = h.status + " · kafka " + h.kafka_status + " · " + h.websocket_status + (h.alert ? " · ⚠ " + h.alert : "");
    } catch (_) {
      $("health").textContent = "health unavailable";
    }
  }

  async function loadVersion() {
    try {
      const v = await (await fetch("version", { cache: "no-store" })).json();
      st.namespace = v.resume_namespace || null;
      $("version").textContent = v.component + " " + (v.git_sha || "dev") + " · topic " + v.kafka_topic;
    } catch (_) { /* the stream works without it */ }
    // A cursor from another topic or cluster is meaningless here.
    if (st.namespace && st.cursor.namespace && st.cursor.namespace !== st.namespace) {
      st.cursor = { namespace: st.namespace, offsets: {} };
      saveCursor();
    }
  }

  $("reset").onclick = () => {
    if (st.ws && st.ws.readyState === WebSocket.OPEN) {
      st.ws.send('{"type":"cursor_reset"}');
    } else {
      st.cursor = { namespace: st.namespace, offsets: {} };
      saveCursor();
    }
  };
  window.addEventListener("beforeunload", saveCursor);

  setInterval(tick, 1000);
  setInterval(pollHealth, 5000);
  (function frame() { render(); requestAnimationFrame(frame); })();
  pollHealth();
  loadVersion().finally(connect);
})();
