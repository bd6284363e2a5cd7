// End-to-end test of the gateway's built-in web UI (web/static) in headless
// Chromium, driven by playwright-core. Run by scripts/browser.sh test:
//
//   DASHSTREAM_URL   the gateway's UI, e.g. http://127.0.0.1:3002/ (required;
//                    a `dashstream demo` so that records keep arriving)
//   DASHSTREAM_BIN   the gateway binary: record rows are checked against its
//                    own decoder (`dashstream decode --json`); skipped when unset
//   CHROMIUM         browser binary (default /usr/bin/chromium)
//   SCREENSHOT_DIR   where screenshots go (default: a new temp dir)
//
// The tests share one browser and one page and run in order.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { REPO, loadStatic, waitFor } from "./support.mjs";

const URL_ = process.env.DASHSTREAM_URL;
const BIN = process.env.DASHSTREAM_BIN || "";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SHOTS = process.env.SCREENSHOT_DIR || fs.mkdtempSync(path.join(os.tmpdir(), "dashstream-ui-"));
const TYPES = new Set(["event", "state_diff", "token_chunk", "tool_execution", "checkpoint", "metrics", "error",
  "event_batch", "execution_trace", "none"]);

// ---- helpers ----------------------------------------------------------------

function loadDecoder() {
  return loadStatic("decode.js", { TextDecoder }, "DashStreamDecode");
}

// cursorsOf returns the (partition, offset, binary) records a socket received,
// and the protocol errors in its framing (a cursor not immediately followed by
// its binary frame, a binary frame without a cursor).
function recordsOf(sock) {
  const out = [], errors = [];
  let pending = null;
  for (const f of sock.frames) {
    if (f.dir !== "in") continue;
    if (typeof f.payload === "string") {
      const m = JSON.parse(f.payload);
      if (pending) errors.push("cursor " + JSON.stringify(pending) + " followed by a text frame " + m.type);
      pending = m.type === "cursor" ? m : null;
      if (m.type === "cursor") assert.equal(typeof m.offset, "string", "cursor offsets are JSON strings");
    } else {
      if (!pending) errors.push("binary frame without cursor");
      else out.push({ p: String(pending.partition), o: pending.offset, bin: f.payload });
      pending = null;
    }
  }
  return { records: out, errors };
}

function firstSent(sock) {
  const f = sock.frames[0];
  if (!f || f.dir !== "out") return null;
  return JSON.parse(f.payload);
}

// assertOrdered checks that offsets per partition strictly increase and,
// where base says where a partition resumed, continue at base+1 (the demo
// writes no transactions, so its offsets are contiguous).
function assertOrdered(seen, base, label) {
  for (const [p, offs] of Object.entries(seen)) {
    for (let i = 1; i < offs.length; i++) {
      assert.ok(BigInt(offs[i]) > BigInt(offs[i - 1]), `${label}: p${p} offset ${offs[i]} after ${offs[i - 1]} (duplicate or regression)`);
      assert.equal(BigInt(offs[i]), BigInt(offs[i - 1]) + 1n, `${label}: p${p} hole between ${offs[i - 1]} and ${offs[i]}`);
    }
  }
  for (const [p, o] of Object.entries(base || {})) {
    const offs = seen[p] || [];
    const first = offs.find((x) => BigInt(x) > BigInt(o));
    const dup = offs.find((x) => BigInt(x) <= BigInt(o));
    assert.equal(dup, undefined, `${label}: p${p} got offset ${dup} at or before its resume cursor ${o}`);
    if (first !== undefined) assert.equal(BigInt(first), BigInt(o) + 1n, `${label}: p${p} resumed at ${first}, cursor was ${o}`);
  }
}

// ---- the decoder, on the project's test vectors (no browser) ------------------

describe("decode.js", () => {
  it("agrees with testdata/dashstream/MANIFEST.json", () => {
    const D = loadDecoder();
    const dir = path.join(REPO, "testdata/dashstream");
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, "MANIFEST.json"), "utf8"));
    let checked = 0;
    for (const v of manifest) {
      if (!v.file) continue;
      const bytes = fs.readFileSync(path.join(dir, v.file));
      const got = JSON.parse(JSON.stringify(D.decode(bytes))); // out of the vm's realm
      const where = v.file + ": " + JSON.stringify(got);
      if (bytes[0] === 0x01 || bytes.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) {
        assert.match(got.framing, /zstd/, where); // shown as compressed, not decoded
        continue;
      }
      if (!v.valid) {
        assert.equal(got.framing, "invalid", where);
        assert.ok(got.error, where);
        checked++;
        continue;
      }
      assert.equal(got.framing, v.framing, where);
      assert.equal(got.type, v.message_type, where);
      assert.equal(got.thread, v.header ? v.header.thread_id : "", where);
      assert.equal(got.seq, v.header ? v.header.sequence : "0", where);
      if (v.header) assert.equal(got.tsUs, String(v.header.timestamp_us), where);
      if (v.inner_events) {
        assert.deepEqual(got.inner.map((e) => [e.thread, e.seq, e.eventType]),
          v.inner_events.map((e) => [e.thread_id, e.sequence, e.event_type]), where);
      }
      if (v.event_type) assert.ok(got.detail.startsWith(v.event_type.name.replace(/^EVENT_TYPE_/, "")), where);
      checked++;
    }
    assert.ok(checked >= 25, "checked " + checked + " vectors");
  });
});

// ---- the UI in Chromium -----------------------------------------------------------

describe("built-in UI", { skip: !URL_ && "DASHSTREAM_URL is not set" }, () => {
  let browser, context, page, version;
  const sockets = [];     // every WebSocket the page opened, in order
  const problems = [];    // page errors, console errors, CSP violations

  before(async () => {
    version = await (await fetch(new URL("version", URL_))).json();
    assert.ok(version.resume_namespace, "/version has a resume_namespace");
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      timeout: 20000,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
    });
    context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    context.setDefaultTimeout(10000);
    page = await context.newPage();
    page.on("pageerror", (e) => problems.push("pageerror: " + e.message));
    // Failed loads are reported by URL below (the /version page of the stale
    // cursor test makes Chromium ask for a favicon: not the UI's).
    page.on("console", (m) => { if (m.type() === "error" && !/^Failed to load resource/.test(m.text())) problems.push("console: " + m.text()); });
    page.on("response", (r) => { if (r.status() >= 400 && !r.url().endsWith("/favicon.ico")) problems.push(r.status() + " " + r.url()); });
    page.on("requestfailed", (r) => { if (!r.url().endsWith("/favicon.ico")) problems.push("failed: " + r.url() + " " + (r.failure() || {}).errorText); });
    page.on("websocket", (ws) => {
      const sock = { url: ws.url(), frames: [], closed: false };
      sockets.push(sock);
      ws.on("framesent", (f) => sock.frames.push({ dir: "out", payload: f.payload }));
      ws.on("framereceived", (f) => sock.frames.push({ dir: "in", payload: f.payload }));
      ws.on("close", () => { sock.closed = true; });
    });
  });

  after(async () => {
    if (browser) await browser.close();
  });

  const snapshot = () => page.evaluate(() => window.__dashstream.snapshot());
  const waitLive = () => page.waitForFunction(() => document.querySelector("#conn").dataset.state === "live", null, { timeout: 15000 });

  it("connects, resumes first, and shows live records", async () => {
    await page.goto(URL_, { waitUntil: "domcontentloaded", timeout: 10000 });
    await waitLive();
    assert.equal(await page.textContent("#conn"), "live");

    const sock = sockets[0];
    assert.ok(sock && new URL(sock.url).pathname.endsWith("/ws"), "the page opened /ws");
    const resume = firstSent(sock);
    assert.ok(resume, "the first frame on the socket is one the page sent");
    assert.equal(resume.type, "resume");
    assert.equal(resume.from, "cursor");
    assert.equal(typeof resume.lastOffsetsByPartition, "object");
    assert.equal(resume.namespace, version.resume_namespace);

    // Counts per partition go up while records arrive.
    const before = await snapshot();
    await waitFor("20 more records", async () => (await snapshot()).total >= before.total + 20, 15000);
    const later = await snapshot();
    let grew = 0;
    for (const [p, n] of Object.entries(before.counts)) assert.ok((later.counts[p] || 0) >= n, "p" + p + " count went down");
    for (const [p, n] of Object.entries(later.counts)) if (n > (before.counts[p] || 0)) grew++;
    assert.ok(grew >= 1, "some partition's count grew: " + JSON.stringify([before.counts, later.counts]));

    // What the page shows: one render pass, read at once.
    const dom = await page.evaluate(() => ({
      rows: [...document.querySelectorAll("#records tr")].map((tr) => ({ ...tr.dataset, cells: [...tr.cells].map((c) => c.textContent) })),
      parts: [...document.querySelectorAll("#partitions tr")].map((tr) => [...tr.cells].map((c) => c.textContent)),
      threads: [...document.querySelectorAll("#threads tr")].map((tr) => [...tr.cells].map((c) => c.textContent)),
      total: document.querySelector("#total").textContent,
    }));
    assert.ok(dom.rows.length >= 20, "at least 20 record rows, got " + dom.rows.length);
    assert.ok(dom.parts.length >= 1, "a partition row");
    const top = {};
    for (const r of dom.rows) {
      assert.match(r.partition, /^\d+$/);
      assert.match(r.offset, /^\d+$/);
      assert.equal(r.cells[1], r.partition);
      assert.equal(r.cells[2], r.offset);
      if (r.framing === "plain") {
        assert.ok(TYPES.has(r.type), "known message type: " + r.type);
        assert.equal(r.cells[3], r.type);
        assert.ok(r.thread.length > 0, "a decoded record shows its thread");
      } else {
        assert.equal(r.framing, "zstd", "the demo writes plain or zstd values: " + JSON.stringify(r));
        assert.equal(r.cells[3], "zstd");
      }
      // Newest first: per partition, offsets go down the table.
      if (top[r.partition] !== undefined) assert.ok(BigInt(r.offset) < BigInt(top[r.partition].last), "p" + r.partition + " rows out of order");
      else top[r.partition] = { first: r.offset };
      top[r.partition].last = r.offset;
    }
    for (const [p, n, cursor] of dom.parts) {
      assert.match(n, /^\d+$/);
      if (top[p]) assert.equal(cursor, top[p].first, "p" + p + " cursor is the newest row's offset");
    }
    assert.ok(dom.threads.length >= 2, "agent runs listed: " + JSON.stringify(dom.threads));
    assert.ok(dom.threads.every((t) => Number(t[2]) > 0), "each run has messages");
    assert.ok(dom.rows.some((r) => r.framing === "plain" && r.type === "event" && /^(GRAPH|NODE|LLM|TOOL)_/.test(r.cells[6])),
      "event rows name their event type");

    const { records, errors } = recordsOf(sock);
    assert.deepEqual(errors, [], "cursor/binary pairing");
    assert.ok(records.length >= 20);

    const log = await page.$$eval("#events li", (lis) => lis.map((li) => [li.dataset.kind, li.textContent]));
    assert.ok(log.some(([k]) => k === "resume"), "the status log shows the resume");
    assert.ok(log.some(([k, t]) => k === "replay" && /replay complete/.test(t)), "the status log shows replay_complete");
    assert.deepEqual((await snapshot()).alerts, { gaps: 0, stale: 0, skipped: 0, violations: 0 });
  });

  it("decodes records like the gateway does", { skip: !BIN && "DASHSTREAM_BIN is not set" }, async () => {
    const captured = new Map(recordsOf(sockets[0]).records.map((r) => [r.p + "/" + r.o, r.bin]));
    const rows = await page.$$eval("#records tr", (trs) => trs.map((tr) => ({ ...tr.dataset })));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dashstream-frames-"));
    try {
      const picked = rows.filter((r) => captured.has(r.partition + "/" + r.offset)).slice(0, 60);
      const files = picked.map((r, i) => {
        const f = path.join(dir, i + ".bin");
        fs.writeFileSync(f, captured.get(r.partition + "/" + r.offset));
        return f;
      });
      assert.ok(files.length >= 10, "captured frames for the rows shown: " + files.length);
      const out = await new Promise((resolve, reject) => execFile(BIN, ["decode", "--json", ...files],
        { timeout: 10000, maxBuffer: 64 << 20 }, (err, stdout) => (err ? reject(err) : resolve(stdout))));
      const lines = out.trim().split("\n").map((l) => JSON.parse(l));
      assert.equal(lines.length, picked.length);
      let plain = 0;
      lines.forEach((g, i) => {
        const r = picked[i], where = JSON.stringify({ row: r, go: { ...g, message: undefined } });
        assert.equal(g.valid, true, where);
        assert.equal(r.framing, g.framing, where);
        if (g.framing !== "plain") return;
        plain++;
        assert.equal(r.type, g.message_type, where);
        assert.equal(r.thread, g.header.thread_id, where);
        assert.equal(r.seq, g.header.sequence, where);
      });
      assert.ok(plain >= 5, "compared " + plain + " plain records");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("filters records by agent run", async () => {
    // Runs are listed newest first: one that starts during the click moves
    // the rows down, so the run selected is read back from the page.
    await page.click("#threads tr.thread >> nth=1");
    const id = await waitFor("a run selected", async () => (await snapshot()).filter, 5000);
    await page.waitForFunction((t) => document.querySelector("#records-title").textContent === "Records of thread " + t, id, { timeout: 5000 });
    assert.equal(await page.getAttribute("#threads tr.selected", "data-thread"), id);
    const rows = await page.$$eval("#records tr", (trs) => trs.map((tr) => ({ ...tr.dataset })));
    assert.ok(rows.length >= 1, "the run's records are listed");
    for (const r of rows) assert.equal(r.thread, id);
    assert.equal(await page.isVisible("#clear-filter"), true);
    await page.click("#clear-filter");
    await page.waitForFunction(() => document.querySelector("#records-title").textContent === "Last records", null, { timeout: 5000 });
    assert.equal((await snapshot()).filter, null);
    const shot = path.join(SHOTS, "ui-live.png");
    await page.screenshot({ path: shot, fullPage: true, timeout: 10000 });
    console.log("screenshot: " + shot);
  });

  it("reconnects after a disconnect and resumes from its cursor: no duplicate, no regression, no hole", async () => {
    const n = sockets.length;
    // Read the cursor and close the socket in one task: nothing is applied in between.
    const cut = await page.evaluate(() => {
      const s = window.__dashstream.snapshot();
      s.seenLengths = Object.fromEntries(Object.entries(window.__dashstream.seen()).map(([p, a]) => [p, a.length]));
      window.__dashstream.socket.close(4000, "e2e forced disconnect");
      return s;
    });
    assert.ok(Object.keys(cut.cursor).length >= 1, "a cursor before the disconnect");
    await page.waitForFunction(() => document.querySelector("#conn").dataset.state !== "live", null, { timeout: 5000 });

    const sock = await waitFor("a new socket with its first frame", () => sockets.length > n && sockets[n].frames.length > 0 && sockets[n], 10000);
    const resume = firstSent(sock);
    assert.ok(resume, "the first frame on the new socket is the page's");
    assert.equal(resume.type, "resume");
    assert.equal(resume.from, "cursor");
    assert.equal(resume.namespace, version.resume_namespace);
    assert.deepEqual(resume.lastOffsetsByPartition, cut.cursor, "resume carries the cursor applied before the disconnect");
    for (const o of Object.values(resume.lastOffsetsByPartition)) assert.equal(typeof o, "string", "offsets are strings");

    await waitLive();
    await waitFor("20 records after the reconnect", async () => (await snapshot()).total >= cut.total + 20, 15000);
    const after = await snapshot();
    assert.ok(after.reconnects >= cut.reconnects + 1);
    assert.equal(await page.textContent("#reconnects"), String(after.reconnects));
    assert.deepEqual(after.alerts, { gaps: 0, stale: 0, skipped: 0, violations: 0 });

    // What the page applied over its whole life, and what the new socket got.
    const seen = await page.evaluate(() => window.__dashstream.seen());
    assertOrdered(seen, null, "page, whole life");
    const afterCut = Object.fromEntries(Object.entries(seen).map(([p, a]) => [p, a.slice(cut.seenLengths[p] || 0)]));
    assertOrdered(afterCut, cut.cursor, "page, after the reconnect");
    const { records, errors } = recordsOf(sock);
    assert.deepEqual(errors, [], "cursor/binary pairing after the reconnect");
    const got = {};
    for (const r of records) (got[r.p] ||= []).push(r.o);
    assertOrdered(got, cut.cursor, "new socket");
    let resumed = 0;
    for (const p of Object.keys(cut.cursor)) if (got[p] && got[p].length) resumed++;
    assert.ok(resumed >= 1, "records followed on a resumed partition");

    const log = await page.$$eval("#events li", (lis) => lis.map((li) => [li.dataset.kind, li.textContent]));
    assert.ok(log.some(([, t]) => /connection closed \(code \d+/.test(t)), "the status log shows the disconnect: " + JSON.stringify(log));
    assert.ok(log.filter(([k]) => k === "resume").length >= 2, "the status log shows both resumes");
  });

  it("resumes from the cursor saved in localStorage after a page reload", async () => {
    const pre = await snapshot();
    assert.equal(pre.storageKey, "dashstream.cursor:" + version.resume_namespace);
    const stored = await page.evaluate((k) => JSON.parse(localStorage.getItem(k)), pre.storageKey);
    assert.ok(stored && stored.offsets && Object.keys(stored.offsets).length >= 1, "a cursor is stored per namespace");

    const n = sockets.length;
    await page.reload({ waitUntil: "domcontentloaded", timeout: 10000 });
    const sock = await waitFor("the reloaded page's socket", () => sockets.length > n && sockets.at(-1).frames.length > 0 && sockets.at(-1), 10000);
    const resume = firstSent(sock);
    assert.ok(resume && resume.type === "resume" && resume.from === "cursor", JSON.stringify(resume));
    assert.equal(resume.namespace, version.resume_namespace);
    const cur = resume.lastOffsetsByPartition;
    for (const [p, o] of Object.entries(pre.cursor)) {
      assert.equal(typeof cur[p], "string", "p" + p + " listed after the reload");
      assert.ok(BigInt(cur[p]) >= BigInt(o), `p${p}: resumed from ${cur[p]}, before the reload the page was at ${o}`);
    }

    await waitLive();
    await waitFor("10 records after the reload", async () => (await snapshot()).total >= 10, 15000);
    const post = await snapshot();
    assert.equal(post.reconnects, 0, "a fresh page");
    assert.deepEqual(post.alerts, { gaps: 0, stale: 0, skipped: 0, violations: 0 });
    assertOrdered(await page.evaluate(() => window.__dashstream.seen()), cur, "reloaded page");
    const log = await page.$$eval("#events li", (lis) => lis.map((li) => [li.dataset.kind, li.textContent]));
    assert.ok(log.some(([k, t]) => k === "resume" && /from cursor/.test(t)), "the status log shows the resume from the stored cursor");
    const shot = path.join(SHOTS, "ui-after-reload.png");
    await page.screenshot({ path: shot, fullPage: true, timeout: 10000 });
    console.log("screenshot: " + shot);
  });

  it("\"start from now\" resets the cursor to the gateway's heads", async () => {
    const pre = await snapshot();
    const sock = sockets.at(-1);
    await page.click("#reset");
    const reply = await waitFor("cursor_reset_complete", () => sock.frames.map((f) => f.dir === "in" && typeof f.payload === "string" && JSON.parse(f.payload))
      .find((m) => m && m.type === "cursor_reset_complete"), 5000);
    const heads = reply.latestOffsetsByPartition;
    for (const [p, o] of Object.entries(pre.cursor)) assert.ok(BigInt(heads[p]) >= BigInt(o), `p${p}: head ${heads[p]} is behind the page's cursor ${o}`);
    await waitFor("the reset in the status log", () => page.$("#events li.info >> text=cursor reset"), 5000);
    const post = await snapshot();
    await waitFor("records after the reset", async () => (await snapshot()).total >= post.total + 5, 10000);
    const seen = await page.evaluate(() => window.__dashstream.seen());
    assertOrdered(seen, heads, "after the reset");
    assert.deepEqual((await snapshot()).alerts, { gaps: 0, stale: 0, skipped: 0, violations: 0 });
  });

  it("reports a stale cursor, drops it and replays the window", async () => {
    // A cursor beyond the high watermark cannot belong to this topic: the
    // gateway answers cursor_stale and replays that partition from its window.
    const key = "dashstream.cursor:" + version.resume_namespace;
    const bogus = { 0: "999999999", 1: "999999999", 2: "999999999", 3: "999999999" };
    await page.goto(new URL("version", URL_).href, { waitUntil: "domcontentloaded" }); // same origin, no UI: nothing saves on unload
    await page.evaluate(([k, o]) => localStorage.setItem(k, JSON.stringify({ offsets: o })), [key, bogus]);
    const n = sockets.length;
    await page.goto(URL_, { waitUntil: "domcontentloaded" });
    const sock = await waitFor("the socket of the page", () => sockets.length > n && sockets.at(-1).frames.length > 0 && sockets.at(-1), 10000);
    assert.deepEqual(firstSent(sock).lastOffsetsByPartition, bogus);
    await waitLive();
    const stale = sock.frames.filter((f) => f.dir === "in" && typeof f.payload === "string" && JSON.parse(f.payload).type === "cursor_stale");
    assert.ok(stale.length >= 1, "the gateway sent cursor_stale");
    await waitFor("replayed records", async () => (await snapshot()).total >= 10, 10000);
    const s = await snapshot();
    assert.equal(s.alerts.stale, stale.length);
    assert.equal(s.alerts.violations, 0, "replayed offsets below the stale cursor are not taken for duplicates");
    for (const [p, o] of Object.entries(s.cursor)) assert.ok(BigInt(o) < 999999999n, `p${p} cursor ${o}`);
    assertOrdered(await page.evaluate(() => window.__dashstream.seen()), null, "after the stale cursor");
    const log = await page.$$eval("#events li.stale", (lis) => lis.map((li) => li.textContent));
    assert.ok(log.some((t) => /cursor stale p\d+: requested 999999999/.test(t)), JSON.stringify(log));
    const shot = path.join(SHOTS, "ui-stale-cursor.png");
    await page.screenshot({ path: shot, fullPage: true, timeout: 10000 });
    console.log("screenshot: " + shot);
  });

  it("?from=latest starts from now, without history", async () => {
    const n = sockets.length;
    await page.goto(new URL("?from=latest", URL_).href, { waitUntil: "domcontentloaded" });
    const sock = await waitFor("the socket of the page", () => sockets.length > n && sockets.at(-1).frames.length > 0 && sockets.at(-1), 10000);
    const resume = firstSent(sock);
    assert.equal(resume.from, "latest");
    assert.deepEqual(resume.lastOffsetsByPartition, {});
    await waitLive();
    const texts = sock.frames.filter((f) => f.dir === "in").map((f) => (typeof f.payload === "string" ? JSON.parse(f.payload) : null));
    const rc = texts.findIndex((m) => m && m.type === "replay_complete");
    assert.ok(rc >= 0, "replay_complete received");
    assert.equal(texts[rc].mode, "latest");
    assert.equal(texts[rc].totalReplayed, 0);
    assert.ok(texts.slice(0, rc).every((m) => m && m.type !== "cursor"), "no record before replay_complete");
    await waitFor("live records", async () => (await snapshot()).total >= 5, 10000);
    assertOrdered(await page.evaluate(() => window.__dashstream.seen()), texts[rc].lastOffsetsByPartition, "from latest");
    const s = await snapshot();
    assert.deepEqual(s.alerts, { gaps: 0, stale: 0, skipped: 0, violations: 0 });
    // The page saves its new cursor (once a second): a plain reload resumes from it.
    await waitFor("the cursor saved", () => page.evaluate((k) => {
      const v = JSON.parse(localStorage.getItem(k) || "null");
      return v && Object.keys(v.offsets).length >= 1;
    }, s.storageKey), 3000);
  });

  it("had no page errors, console errors or CSP violations", () => {
    assert.deepEqual(problems, []);
  });
});

// ---- client auth: the UI's #token= path ----------------------------------------

// freePort asks the kernel for a free loopback port.
async function freePort() {
  const net = await import("node:net");
  return new Promise((resolve, reject) => {
    const srv = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

describe("built-in UI with client auth", { skip: !BIN && "DASHSTREAM_BIN is not set" }, () => {
  const TOKEN = "ui-test-token-" + process.pid;
  let gw, url, browser;

  before(async () => {
    const { spawn } = await import("node:child_process");
    const [wsPort, kafkaPort] = [await freePort(), await freePort()];
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "dashstream-ui-auth-"));
    url = `http://127.0.0.1:${wsPort}/`;
    gw = spawn(BIN, ["serve"], {
      stdio: "ignore",
      env: { PATH: process.env.PATH, HOME: process.env.HOME || tmp, WEBSOCKET_HOST: "127.0.0.1",
        WEBSOCKET_PORT: String(wsPort), EMBEDDED_KAFKA_ADDR: `127.0.0.1:${kafkaPort}`,
        EXPECTED_SCHEMAS_PATH: path.join(tmp, "schemas.json"), WEBSOCKET_AUTH_TOKEN: TOKEN, LOG_LEVEL: "warn" },
    });
    await waitFor("the auth gateway's /readyz", async () => {
      try { return (await fetch(url + "readyz")).status === 200; } catch { return false; }
    }, 30000);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, timeout: 20000,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"] });
  });

  after(async () => {
    if (browser) await browser.close();
    if (gw) gw.kill("SIGTERM");
  });

  it("is refused without a token and connects with #token= over the bearer subprotocol", async () => {
    const http = await import("node:http");
    const status = await new Promise((resolve, reject) => {
      const req = http.get(url + "ws", { headers: { Connection: "Upgrade", Upgrade: "websocket",
        "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==" } });
      req.on("response", (res) => { res.resume(); resolve(res.statusCode); });
      req.on("upgrade", (res, sock) => { sock.destroy(); resolve(101); });
      req.on("error", reject);
    });
    assert.equal(status, 401, "the gateway refuses an unauthenticated WebSocket");

    const page = await (await browser.newContext()).newPage();
    const protocols = [];
    page.on("websocket", (ws) => protocols.push(ws.url()));
    await page.goto(url + "#token=" + encodeURIComponent(TOKEN), { waitUntil: "domcontentloaded", timeout: 10000 });
    await page.waitForFunction(() => document.querySelector("#conn").dataset.state === "live", null, { timeout: 15000 });
    assert.ok(!page.url().includes("token="), "the token is removed from the address bar");
    assert.ok(protocols.length >= 1 && protocols.every((u) => !u.includes("token")), "the token never travels in the URL");
    assert.equal(await page.evaluate(() => window.__dashstream.socket.protocol), "bearer", "the gateway echoed the bearer subprotocol");
  });
});
