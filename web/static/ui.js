// Pieces the live view (app.js) and the run view (run.js) share: the /ws
// URL, the connection badge, the event log, the reconnect backoff, cursor
// validation and the /version line. A classic script without dependencies:
// it defines globalThis.DashStreamUI and is loaded before either view.
"use strict";
(() => {
  // wsURL is the gateway's /ws beside the page (ws: or wss: as the page).
  function wsURL() {
    const u = new URL("ws", document.baseURI);
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    return u.toString();
  }

  // showConn shows a connection state in the #conn badge.
  function showConn(state, text) {
    const el = document.getElementById("conn");
    el.textContent = text;
    el.className = "state " + state;
    el.dataset.state = state;
  }

  // logEvent prepends a timestamped line of the given kind to the #events
  // list and keeps at most max lines.
  function logEvent(kind, text, max) {
    const li = document.createElement("li");
    li.className = kind;
    li.dataset.kind = kind;
    const time = document.createElement("time");
    time.textContent = new Date().toLocaleTimeString();
    li.append(time, " ", text);
    const ul = document.getElementById("events");
    ul.prepend(li);
    while (ul.children.length > max) ul.lastChild.remove();
  }

  // scheduleReconnect calls reconnect after the next delay (jittered around
  // st.backoff, which doubles up to 10 s), unless one is already scheduled
  // (st.retryTimer), and shows the wait through setConn.
  function scheduleReconnect(st, setConn, reconnect) {
    if (st.retryTimer) return;
    const delay = Math.round(st.backoff * (0.5 + Math.random()));
    st.backoff = Math.min(st.backoff * 2, 10000);
    setConn("reconnecting", "reconnecting in " + (delay / 1000).toFixed(1) + " s…");
    st.retryTimer = setTimeout(reconnect, delay);
  }

  // closeQuietly closes a socket that is still open or opening without
  // calling its onclose.
  function closeQuietly(ws) {
    if (ws && ws.readyState <= WebSocket.OPEN) {
      ws.onclose = null;
      try { ws.close(); } catch (_) { /* already closing */ }
    }
  }

  // closeEvent describes a close event for the event log, with its kind.
  function closeEvent(ev) {
    return [ev.code === 1000 || ev.code === 1001 ? "info" : "disconnect",
      "connection closed (code " + ev.code + (ev.reason ? ", " + ev.reason : "") + ")"];
  }

  // cleanOffsets keeps the well-formed entries (decimal partition, decimal
  // offset) of a saved cursor, offsets as strings.
  function cleanOffsets(saved) {
    const out = {};
    if (typeof saved !== "object" || saved === null) return out;
    for (const [p, o] of Object.entries(saved)) {
      if (/^\d+$/.test(p) && /^-?\d+$/.test(String(o))) out[p] = String(o);
    }
    return out;
  }

  // versionLine is the text of the #version line for a /version answer.
  function versionLine(v, namespace) {
    return v.component + " " + (v.git_sha || "dev") + " · topic " + v.kafka_topic + " · namespace " + (namespace || "?");
  }

  globalThis.DashStreamUI = Object.freeze({ wsURL, showConn, logEvent, scheduleReconnect, closeQuietly, closeEvent, cleanOffsets, versionLine });
})();
