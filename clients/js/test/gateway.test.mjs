// The client against the real gateway: `dashstream serve` on the Kafka and
// Redis of `make services-up`, fed by the demo workload (`dashstream demo`
// producing into the same topic). Connections are cut under the client (a TCP
// proxy resets them), the client itself is replaced by another one sharing its
// cursor store, and the gateway is restarted (SIGTERM, then SIGKILL); at the
// end every offset the gateway holds must have been applied exactly once, in
// order. The built browser bundle runs the same in headless Chromium
// (Debian's, through playwright-core), across a cut and a page reload with its
// cursor in localStorage. Run by scripts/test.sh js-client (see
// test/support/harness.mjs).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { chromium } from "playwright-core";
import { toJson } from "@bufbuild/protobuf";
import { DashStreamClient, DashStreamMessageSchema, MemoryCursorStore } from "../dist/index.js";
import { Gateway, Proxy, Recorder, createTopics, heads, jwt, missing, sleep, waitFor } from "./support/harness.mjs";

const PARTITIONS = 3;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const BUNDLE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../dist/browser/dashstream-client.js");

// The page of the browser test: the bundle as an ES module; every applied
// record is reported to the test (and awaited) before the client moves on.
const PAGE = `<!doctype html><meta charset="utf-8"><title>client test</title>
<script type="module">
import { DashStreamClient, LocalStorageCursorStore } from "/dashstream-client.js";
window.startClient = (url, extra = {}) => {
  const c = new DashStreamClient({
    url, from: "earliest", store: new LocalStorageCursorStore(), versionUrl: "/version",
    token: () => window.__token(), refreshMarginMs: 3000, backoff: { initialMs: 100, maxMs: 1000 }, ...extra,
  });
  c.on("record", (r) => window.__record(r.partition, r.offset, r.type || "", r.framing || (r.json ? "json" : ""),
    r.decodeError ? r.decodeError.message : r.message ? "" : "no message"));
  for (const k of ["gap", "skipped", "cursor_stale", "server_error", "refresh_complete", "reconnect"]) c.on(k, (f) => window.__event(k, JSON.stringify(f)));
  c.on("error", (e) => window.__event("error", e.message));
  c.start();
  window.client = c;
};
window.ready = true;
</script>`;

// pageServer serves the page, the bundle, and /version of the gateway (same
// origin, so the page can read resume_namespace).
function pageServer(gw) {
  const srv = http.createServer(async (req, res) => {
    if (req.url === "/") {
      res.writeHead(200, { "content-type": "text/html" }).end(PAGE);
    } else if (req.url === "/dashstream-client.js") {
      res.writeHead(200, { "content-type": "text/javascript" }).end(fs.readFileSync(BUNDLE));
    } else if (req.url === "/version") {
      try {
        const r = await fetch(gw.http + "version");
        res.writeHead(r.status, { "content-type": "application/json" }).end(Buffer.from(await r.arrayBuffer()));
      } catch {
        res.writeHead(502).end();
      }
    } else {
      res.writeHead(404).end();
    }
  });
  return new Promise((r) => srv.listen(0, "127.0.0.1", () => r(srv)));
}

describe("DashStreamClient against the gateway", { skip: missing() || false }, () => {
  const topic = `jsclient-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  let gw, producer, proxy;
  let failed = false;

  before(async () => {
    await createTopics(PARTITIONS, topic, `${topic}-dlq`);
    gw = await new Gateway({ topic }).start();
    producer = await new Gateway({ topic, demo: true, redis: false, auth: false, name: "producer" }).start();
    proxy = await new Proxy(gw.port).listen();
  });

  after(async () => {
    await proxy?.close();
    await producer?.stop();
    await gw?.stop();
    if (failed) console.error(`--- gateway log (last lines):\n${gw?.tail()}`);
    gw?.cleanup();
    producer?.cleanup();
  });

  // v2 needs a gateway that selects dashstream.v2 (docs/PROTOCOL.md §3.8).
  const v2 = { skip: false };
  before(async () => {
    if (!(await speaksV2(gw.ws, jwt(30)))) v2.skip = "the gateway does not speak dashstream.v2 yet";
  });

  // client builds a client of the gateway behind the proxy with short-lived
  // JWTs (6 s, leeway 0): it must refresh them on the open connection.
  function client(extra = {}) {
    return new DashStreamClient({
      url: proxy.ws,
      WebSocket,
      token: () => jwt(6),
      refreshMarginMs: 3000,
      backoff: { initialMs: 100, maxMs: 1000 },
      ...extra,
    });
  }

  function watch(c, ev) {
    for (const k of ["gap", "skipped", "cursor_stale", "server_error", "refresh_complete", "reconnect", "disconnect"]) {
      c.on(k, (f) => (ev[k] ??= []).push(f));
    }
    c.on("error", (e) => (ev.errors ??= []).push(e.message));
  }

  it("refuses to go on with a token the gateway rejects (401)", async () => {
    const c = new DashStreamClient({ url: gw.ws, WebSocket, token: "not-a-valid-token", backoff: { initialMs: 50 } });
    const errors = [];
    c.on("error", (e) => errors.push(e.message));
    c.start();
    await waitFor("the client to stop", () => c.state === "stopped", 10000);
    assert.ok(errors.some((m) => /HTTP 401/.test(m)), errors.join("; "));
  });

  it("in Chromium: the browser bundle applies every offset once across a cut and a page reload (localStorage cursor, bearer subprotocol)", { skip: !fs.existsSync(CHROMIUM) && `${CHROMIUM} is missing` }, async (t) => {
    const srv = await pageServer(gw);
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      timeout: 20000,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
    });
    const rec = new Recorder();
    const ev = {};
    const problems = [];
    try {
      const page = await (await browser.newContext()).newPage();
      page.on("pageerror", (e) => problems.push("pageerror: " + e.message));
      await page.exposeFunction("__record", (p, o, type, framing, err) => rec.add({ partition: p, offset: o, type, framing, decodeError: err ? new Error(err) : undefined }));
      await page.exposeFunction("__event", (k, v) => (ev[k] ??= []).push(v));
      await page.exposeFunction("__token", () => jwt(6));
      const pageUrl = `http://127.0.0.1:${srv.address().port}/`;
      const open = async () => {
        await page.goto(pageUrl, { waitUntil: "load", timeout: 10000 });
        await page.waitForFunction(() => window.ready === true, null, { timeout: 10000 });
        await page.evaluate((url) => window.startClient(url), proxy.ws);
      };
      const grow = async (what, n = 20) => {
        const want = rec.records + n;
        await waitFor(`${what}: ${n} more records (have ${rec.records})`, () => rec.records >= want, 30000);
      };
      await open();
      await grow("first records");
      assert.ok(proxy.cut() >= 1, "the page's socket went through the proxy");
      await grow("after a cut");
      await page.evaluate(() => window.client.close()); // nothing is applied after this
      const stored = await page.evaluate(() => Object.fromEntries(Object.entries(localStorage)));
      await open(); // a reload: the new page resumes from localStorage
      await grow("after a reload");
      await waitFor("a token refresh", () => (ev.refresh_complete?.length ?? 0) >= 1, 15000);
      await page.evaluate(() => window.client.close());
      const version = await (await fetch(gw.http + "version")).json();
      const v1problems = rec.problems(Object.fromEntries([...Array(PARTITIONS).keys()].map((p) => [p, "0"])));
      const v1records = rec.records, v1zstd = rec.framings.get("zstd") ?? 0;
      if (!v2.skip) {
        // v2 in the browser: "dashstream.v2, bearer, <token>" offered, JSON records typed.
        rec.byPartition.clear();
        await page.evaluate((url) => window.startClient(url, { protocol: 2, format: "json", name: "v2" }), proxy.ws);
        await grow("v2 JSON records in the browser");
        await page.evaluate(() => window.client.close());
        assert.deepEqual(rec.problems(Object.fromEntries([...Array(PARTITIONS).keys()].map((p) => [p, "0"]))), [], "v2: every offset once, in order");
        assert.ok((rec.framings.get("json") ?? 0) >= 20, "v2 JSON records");
      }
      t.diagnostic(`browser: records ${rec.records}, stored ${JSON.stringify(stored)}, framings ${JSON.stringify(Object.fromEntries(rec.framings))}`);
      assert.ok(Object.keys(stored).some((k) => k.endsWith(":" + version.resume_namespace)), "the cursor is stored under the resume_namespace");
      assert.deepEqual(v1problems, [], "every offset once, in order");
      assert.deepEqual(rec.decodeErrors, []);
      assert.ok(v1zstd > 0, `zstd records decoded in the browser (of ${v1records})`);
      assert.deepEqual(ev.gap ?? [], []);
      assert.deepEqual(ev.server_error ?? [], []);
      assert.deepEqual(problems, []);
    } catch (err) {
      failed = true;
      throw err;
    } finally {
      await browser.close();
      srv.close();
    }
  });

  it("v2: binary and JSON records agree, exactly once across a cut; thread and type filters admit only theirs", async (t) => {
    if (v2.skip) return t.skip(v2.skip);
    const bin = new Recorder(), js = new Recorder();
    const msgs = new Map(); // "p/o" -> canonical JSON of the binary record's message
    const mismatches = [];
    const ev = {};
    const a = client({ protocol: 2, from: "earliest", name: "v2bin" });
    const b = client({ protocol: 2, format: "json", from: "earliest", name: "v2json" });
    watch(a, ev);
    watch(b, ev);
    a.on("record", (r) => {
      bin.add(r);
      if (r.message) msgs.set(`${r.partition}/${r.offset}`, toJson(DashStreamMessageSchema, r.message));
    });
    b.on("record", (r) => {
      js.add(r);
      assert.equal(r.value, undefined, "a JSON record has no binary value");
      const want = msgs.get(`${r.partition}/${r.offset}`);
      if (want && r.message && JSON.stringify(toJson(DashStreamMessageSchema, r.message)) !== JSON.stringify(want)) mismatches.push(`${r.partition}/${r.offset}`);
    });
    a.start();
    await waitFor("v2 binary records", () => bin.records >= 20, 30000);
    b.start();
    try {
      await waitFor("v2 JSON records", () => js.records >= 20, 30000);
      proxy.cut();
      const n = Math.max(bin.records, js.records) + 20;
      await waitFor("both after a cut", () => bin.records >= n && js.records >= n, 30000);
    } finally {
      await a.close();
      await b.close();
    }
    const zero = Object.fromEntries([...Array(PARTITIONS).keys()].map((p) => [p, "0"]));
    assert.deepEqual(bin.problems(zero), [], "v2 binary: every offset once, in order");
    assert.deepEqual(js.problems(zero), [], "v2 JSON: every offset once, in order");
    assert.deepEqual(bin.decodeErrors.concat(js.decodeErrors), []);
    assert.deepEqual(mismatches, [], "JSON records are the binary records' messages");
    assert.deepEqual((ev.server_error ?? []).map((f) => f.code), []);

    // A thread filter: only that thread's records (a batch whole when any event matches).
    const thread = [...msgs.values()].map((m) => Object.values(m)[0]?.header?.threadId).find(Boolean);
    assert.ok(thread, "a thread id to follow");
    // And a type filter (v1 resumes take filters too), at the same time.
    const seen = [], typed = [];
    const f = client({ protocol: 2, format: "json", from: "earliest", name: "v2thread", filter: { threads: [thread] } });
    const g = client({ from: "earliest", name: "v1types", filter: { types: ["token_chunk", "checkpoint"] } });
    f.on("record", (r) => seen.push(r));
    g.on("record", (r) => typed.push(r));
    f.start();
    g.start();
    try {
      await waitFor("records of the thread and of the types", () => seen.length >= 5 && typed.length >= 5, 30000);
    } finally {
      await f.close();
      await g.close();
    }
    const threadsOf = (r) => r.type === "event_batch" ? r.message.message.value.events.map((e) => e.header?.threadId) : [r.header?.threadId];
    assert.deepEqual(seen.filter((r) => !threadsOf(r).includes(thread)).map((r) => `${r.partition}/${r.offset}`), [], `only ${thread}`);
    assert.deepEqual([...new Set(typed.map((r) => r.type))].filter((x) => x !== "token_chunk" && x !== "checkpoint"), [], "only the filter's types");
    assert.ok(typed.some((r) => r.type === "token_chunk"));
  });

  it("v2: join at the last full state starts each thread with a full-state record", async (t) => {
    if (v2.skip) return t.skip(v2.skip);
    const first = new Map(); // thread -> first record
    const c = client({ protocol: 2, from: "latest", join: "checkpoint", name: "v2join" });
    let complete = null;
    c.on("record", (r) => {
      if (complete) return; // live records: the join's replay is over
      for (const id of r.type === "event_batch" ? [] : [r.header?.threadId]) if (id && !first.has(id)) first.set(id, r);
    });
    c.on("replay_complete", (f) => (complete ??= f));
    c.start();
    try {
      await waitFor("the join's replay_complete", () => complete, 30000);
    } finally {
      await c.close();
    }
    t.diagnostic(`join: ${first.size} thread(s), totalReplayed ${complete.totalReplayed}: ${[...first.values()].map((r) => r.type).join(", ")}`);
    assert.ok(first.size >= 1, "the join replayed active threads");
    assert.ok(complete.totalReplayed >= first.size, "the join's records are replay");
    const fullState = (r) => {
      const b = r.message?.message;
      if (!b) return false;
      if (b.case === "checkpoint") return true;
      if (b.case === "stateDiff") return b.value.fullState.length > 0;
      return b.case === "event" && b.value.eventType === 1 && "initial_state_json" in b.value.attributes;
    };
    const bad = [...first.entries()].filter(([, r]) => !fullState(r)).map(([id, r]) => `${id}: ${r.type} at ${r.partition}/${r.offset}`);
    assert.deepEqual(bad, [], "each thread starts at a full-state record");
  });

  it("v1: applies every offset exactly once across cut connections, a client restart and gateway restarts", async (t) => {
    const rec = new Recorder();
    const ev = {};
    const store = new MemoryCursorStore();
    const grow = async (what, n = 25) => {
      const want = rec.records + n;
      await waitFor(`${what}: ${n} more records (have ${rec.records})`, () => rec.records >= want, 30000);
    };
    let c = client({ from: "earliest", store, name: "exact" });
    watch(c, ev);
    c.on("record", (r) => rec.add(r));
    c.start();
    try {
      await grow("first records");
      // Outlive the first token (6 s, no leeway) on one connection: only
      // refresh frames keep it open.
      const reconnects = ev.reconnect?.length ?? 0;
      await waitFor("two token refreshes", () => (ev.refresh_complete?.length ?? 0) >= 2, 15000);
      await sleep(1500);
      assert.equal(ev.reconnect?.length ?? 0, reconnects, "no reconnect while tokens are refreshed");
      assert.ok(proxy.cut() >= 1, "the client's connection went through the proxy");
      await grow("after a cut");
      proxy.cut();
      await grow("after a second cut");

      // Another client, same store: it goes on where the first one stopped.
      await c.close();
      const saved = store.load(`exact:${c.cursor().namespace}`);
      assert.deepEqual(saved, c.cursor().offsets, "the store holds the cursor");
      c = client({ from: "earliest", store, name: "exact" });
      watch(c, ev);
      c.on("record", (r) => rec.add(r));
      c.start();
      await grow("a new client on the same store");

      await gw.stop("SIGTERM"); // clients get 1001
      await sleep(300);
      await gw.start();
      await grow("after a clean gateway restart");
      await gw.stop("SIGKILL");
      await sleep(300);
      await gw.start();
      await grow("after the gateway was killed");
      proxy.cut();
      await grow("after a third cut", 10);

      // Stop producing; wait until the heads stand still and the client holds them.
      await producer.stop();
      let h = await heads(gw.ws, jwt(30));
      await waitFor("the heads to settle", async () => {
        await sleep(1000);
        const h2 = await heads(gw.ws, jwt(30));
        const same = JSON.stringify(h2) === JSON.stringify(h);
        h = h2;
        return same;
      }, 30000, 0);
      await waitFor(`the client to reach the heads ${JSON.stringify(h)}`, () => rec.reached(h), 30000);
      await sleep(500); // anything duplicated would arrive now
    } catch (err) {
      failed = true;
      throw err;
    } finally {
      await c.close();
    }
    const from = Object.fromEntries([...Array(PARTITIONS).keys()].map((p) => [p, "0"]));
    const h = await heads(gw.ws, jwt(30));
    t.diagnostic(`records ${rec.records}, heads ${JSON.stringify(h)}, cuts ${proxy.cuts}, reconnects ${ev.reconnect?.length ?? 0}, ` +
      `refreshes ${ev.refresh_complete?.length ?? 0}, framings ${JSON.stringify(Object.fromEntries(rec.framings))}`);
    assert.deepEqual(rec.problems(from, h), [], "every offset exactly once, in order");
    assert.equal(rec.records, Object.values(h).reduce((n, o) => n + Number(o) + 1, 0));
    assert.deepEqual(ev.gap ?? [], []);
    assert.deepEqual(ev.skipped ?? [], []);
    assert.deepEqual(ev.cursor_stale ?? [], []);
    assert.deepEqual((ev.server_error ?? []).map((f) => f.code), [], "no error frames (TOKEN_EXPIRED would mean a missed refresh)");
    assert.deepEqual(rec.decodeErrors, [], "every record decodes");
    assert.ok((rec.framings.get("zstd") ?? 0) > 0 && (rec.framings.get("plain") ?? 0) > 0, "plain and zstd records");
    assert.ok(rec.types.get("event") > 0 && rec.types.size >= 3, JSON.stringify(Object.fromEntries(rec.types)));
    assert.ok((ev.refresh_complete?.length ?? 0) >= 1, "tokens were refreshed in place");
    assert.ok((ev.reconnect?.length ?? 0) >= 5, `reconnected after each cut and restart (${ev.reconnect?.length})`);
  });
});

// v2 needs a gateway that selects the dashstream.v2 subprotocol.
export function speaksV2(wsUrl, token) {
  return new Promise((resolve) => {
    const ws = new WebSocket(wsUrl, ["dashstream.v2"], { headers: { Authorization: `Bearer ${token}` } });
    ws.on("open", () => {
      resolve(ws.protocol === "dashstream.v2");
      ws.close();
    });
    ws.on("error", () => resolve(false));
  });
}
