// A real EventSource in headless Chromium reading GET /sse through a proxy
// that cuts the stream again and again: the browser reconnects by itself
// with Last-Event-ID, and every record of every partition arrives exactly
// once, in order. Run by scripts/browser.sh test:
//
//   DASHSTREAM_URL   the gateway, e.g. http://127.0.0.1:3002/ (required; a
//                    `dashstream demo`, so that records keep arriving)
//   CHROMIUM         browser binary (default /usr/bin/chromium)
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { chromium } from "playwright-core";

const URL_ = process.env.DASHSTREAM_URL;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

// cuttingProxy forwards every request to the gateway; an /sse response is
// prefixed with "retry: 100" (a quick reconnect) and its connection ends
// after cutAfter bytes (mostly inside an event, which the browser must not
// dispatch) or 300 ms, so the browser's EventSource must reconnect on its
// own. It records the Last-Event-ID of each /sse request.
function cuttingProxy(target, cutAfter) {
  const seen = { sse: 0, lastEventIds: [] };
  const server = http.createServer((req, res) => {
    const isSSE = req.url.startsWith("/sse");
    if (isSSE) {
      seen.sse++;
      seen.lastEventIds.push(req.headers["last-event-id"] || "");
    }
    const up = http.request({ host: target.hostname, port: target.port, path: req.url, method: req.method,
      headers: { ...req.headers, host: target.host } }, (upRes) => {
      res.writeHead(upRes.statusCode, upRes.headers);
      if (!isSSE || upRes.statusCode !== 200) {
        upRes.pipe(res);
        return;
      }
      res.write("retry: 100\n\n");
      let n = 0, done = false;
      const cut = () => { // the connection ends where it is, maybe inside an event
        if (done) return;
        done = true;
        upRes.destroy();
        req.socket.end();
      };
      const timer = setTimeout(cut, 300);
      upRes.on("data", (chunk) => {
        if (done) return;
        if (n + chunk.length >= cutAfter) {
          res.write(chunk.subarray(0, cutAfter - n), cut);
          return;
        }
        n += chunk.length;
        res.write(chunk);
      });
      upRes.on("close", () => clearTimeout(timer));
      upRes.on("end", () => res.end());
    });
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ server, seen })));
}

describe("GET /sse in Chromium", { skip: !URL_ && "DASHSTREAM_URL not set" }, () => {
  let browser, proxy, page;
  before(async () => {
    proxy = await cuttingProxy(new URL(URL_), 64000);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    page = await browser.newPage();
    const base = "http://127.0.0.1:" + proxy.server.address().port;
    await page.goto(base + "/version"); // any same-origin page
  });
  after(async () => {
    await browser?.close();
    proxy?.server.close();
  });

  it("resumes exactly across forced disconnects by the browser's own Last-Event-ID", async () => {
    await page.evaluate(() => {
      window.got = [];
      window.opens = 0;
      window.controls = [];
      const es = new EventSource("/sse?from=earliest");
      window.es = es;
      es.onopen = () => window.opens++;
      es.addEventListener("record", (e) => {
        const d = JSON.parse(e.data);
        window.got.push({ p: d.partition, o: d.offset, id: e.lastEventId, len: atob(d.value).length });
      });
      es.addEventListener("skipped", (e) => { // a dead-lettered offset: a position too
        const d = JSON.parse(e.data);
        window.got.push({ p: d.partition, o: d.offset, id: e.lastEventId, len: -1 });
      });
      for (const t of ["gap", "cursor_stale", "error", "disconnect"]) {
        // (a connection loss is an "error" Event too, without data: not the gateway's)
        es.addEventListener(t, (e) => e.data !== undefined && window.controls.push(t + " " + e.data));
      }
    });
    // Until the browser reconnected several times and got a good stream.
    const deadline = Date.now() + 60000;
    let state;
    for (;;) {
      state = await page.evaluate(() => ({ opens: window.opens, n: window.got.length,
        parts: new Set(window.got.map((r) => r.p)).size }));
      if (state.opens >= 6 && state.n >= 400 && state.parts >= 2) break;
      assert.ok(Date.now() < deadline, "not enough reconnects or records: " + JSON.stringify(state));
      await new Promise((r) => setTimeout(r, 200));
    }
    const { got, controls } = await page.evaluate(() => {
      window.es.close();
      return { got: window.got, controls: window.controls };
    });
    assert.deepEqual(controls, [], "no gap, stale cursor or error");
    const last = new Map();
    for (const r of got) {
      const o = BigInt(r.o);
      if (last.has(r.p)) {
        assert.equal(o, last.get(r.p) + 1n, `partition ${r.p}: offset ${r.o} after ${last.get(r.p)} (a duplicate or a hole)`);
      }
      last.set(r.p, o);
      assert.ok(r.len !== 0, "a record value");
      assert.match(r.id, new RegExp(`(^|[~,])${r.p}:${r.o}(,|$)`), "the event id holds the record's position");
    }
    // The browser itself resumed: its reconnects carried the last id it had
    // (none only while a cut came before the first whole event).
    const ids = proxy.seen.lastEventIds;
    assert.ok(ids.filter((id) => id.startsWith("c1~")).length >= 5, "reconnects with Last-Event-ID: " + JSON.stringify(ids));
    assert.ok(ids.every((id) => id === "" || id.startsWith("c1~")), "ids are the gateway's cursors");
    console.log(`# ${got.length} records over ${proxy.seen.sse} EventSource connections, partitions ${[...last.keys()]}`);
  });
});
