// End-to-end test of the built-in UI's runs list and run view (index.html's
// "Runs", run.html) in headless Chromium against a running `dashstream demo`
// (scripts/browser.sh test), after unit tests of the run model
// (runmodel.js) that need neither. Same environment as ui.test.mjs:
//
//   DASHSTREAM_URL   the gateway's UI (required)
//   CHROMIUM         browser binary (default /usr/bin/chromium)
//   SCREENSHOT_DIR   where screenshots go (default: a new temp dir)
//
// The run view's state is checked three ways: against the state hashes the
// run carries (state_hash of every StateDiff), against the state this test
// computes itself from the run's history (GET /api/threads/{id}/records,
// another path than the page's socket), and across a reload (the
// sequences applied stay contiguous: nothing lost, nothing twice).
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { loadStatic, waitFor } from "./support.mjs";

const URL_ = process.env.DASHSTREAM_URL;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SHOTS = process.env.SCREENSHOT_DIR || fs.mkdtempSync(path.join(os.tmpdir(), "dashstream-ui-"));

function loadModel() {
  return loadStatic("runmodel.js", { TextDecoder, TextEncoder, atob, structuredClone }, "DashStreamRun");
}

async function getJSON(rel) {
  const r = await fetch(new URL(rel, URL_));
  assert.equal(r.status, 200, rel);
  return r.json();
}

// history returns a thread's retained records in sequence order.
async function history(thread) {
  const out = [];
  let after = "0";
  for (let i = 0; i < 50; i++) {
    const body = await getJSON("api/threads/" + encodeURIComponent(thread) + "/records?format=json&limit=500&after_sequence=" + after);
    out.push(...body.records);
    if (!body.next) return out;
    after = body.next;
  }
  return out;
}

// stateAt applies a thread's history from its first record up to sequence
// seq (inclusive) and returns the state's hash: this test's own state.
function stateAt(R, thread, records, seq) {
  const m = new R.RunModel(thread);
  for (const r of records) {
    const top = r.sequences.map(Number).filter((s) => s > 0);
    if (top.length && Math.min(...top) > seq) break;
    m.apply({ message: r.message }, true);
  }
  return { hash: m.state === null ? null : R.stateHash(m.state), seq: m.stateSeq, errors: m.stateErrors };
}

// contiguous reports whether the sorted sequences have no hole.
function holes(seqs) {
  const out = [];
  for (let i = 1; i < seqs.length; i++) if (seqs[i] !== seqs[i - 1] + 1) out.push(seqs[i - 1] + ".." + seqs[i]);
  return out;
}

// ---- the run model, without a browser or a gateway --------------------------------

describe("runmodel.js", () => {
  const R = loadModel();
  const b64 = (s) => Buffer.from(s).toString("base64");
  const sha = (s) => crypto.createHash("sha256").update(s).digest("hex");
  const header = (seq) => ({ threadId: "t1", sequence: String(seq), timestampUs: "1700000000000000" });

  it("hashes like node:crypto", () => {
    for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 4099]) {
      const b = crypto.randomBytes(n);
      assert.equal(R.hex(R.sha256(new Uint8Array(b))), crypto.createHash("sha256").update(b).digest("hex"), n + " bytes");
    }
  });

  it("writes canonical JSON: compact, keys sorted by UTF-8 bytes at every depth", () => {
    // UTF-16 order would put the astral key before U+FFFF; UTF-8 order does not.
    const v = { "\u{1F600}": 1, "\uffff": [true, null, 1.5, "x"], "é": { b: 2, a: [{ d: 0, c: -1e-7 }] }, z: "q\"" };
    assert.equal(R.canonical(v), '{"z":"q\\"","é":{"a":[{"c":-1e-7,"d":0}],"b":2},"\uffff":[true,null,1.5,"x"],"\u{1F600}":1}');
  });

  it("applies full states and patches, and tells a matching state_hash from a mismatch", () => {
    const m = new R.RunModel("t1");
    const initial = { step: 0, messages: [], results: {} };
    m.apply({ message: { event: { header: header(1), eventType: "EVENT_TYPE_GRAPH_START",
      attributes: { initial_state_json: { stringValue: JSON.stringify(initial) }, graph_name: { stringValue: "g" },
        graph_schema_json: { stringValue: JSON.stringify({ name: "g", nodes: [{ name: "a" }, { name: "b" }], edges: [{ from: "a", to: "b" }], entry_point: "a" }) } } } } }, true);
    assert.equal(m.status, "running");
    assert.equal(m.graph.name, "g");
    const ops = [
      { op: "OP_TYPE_ADD", path: "/messages/-", value: b64('{"role":"user","content":"hi"}'), encoding: "VALUE_ENCODING_JSON" },
      { op: "OP_TYPE_ADD", path: "/results/a~1b", value: b64('{"ok":true}') },
      { op: "OP_TYPE_REPLACE", path: "/step", value: b64("1") },
      { op: "OP_TYPE_ADD", path: "/tmp", value: b64('"x"') },
      { op: "OP_TYPE_MOVE", from: "/tmp", path: "/moved" },
      { op: "OP_TYPE_COPY", from: "/moved", path: "/copied" },
      { op: "OP_TYPE_TEST", path: "/copied", value: b64('"x"') },
      { op: "OP_TYPE_REMOVE", path: "/copied" },
    ];
    const want = '{"messages":[{"content":"hi","role":"user"}],"moved":"x","results":{"a/b":{"ok":true}},"step":1}';
    m.apply({ message: { stateDiff: { header: header(2), operations: ops, stateHash: Buffer.from(sha(want), "hex").toString("base64") } } }, true);
    assert.equal(m.stateErrors.length, 0, m.stateErrors.join("; "));
    assert.equal(R.canonical(m.state), want);
    assert.deepEqual({ checks: m.hash.checks, mismatches: m.hash.mismatches, match: m.hash.lastDiff.match }, { checks: 1, mismatches: 0, match: true });
    // A state_hash of another state is a mismatch, reported with both hashes.
    m.apply({ message: { stateDiff: { header: header(3), operations: [{ op: "OP_TYPE_REPLACE", path: "/step", value: b64("2") }],
      stateHash: Buffer.from(sha(want), "hex").toString("base64") } } }, true);
    assert.equal(m.hash.mismatches, 1);
    assert.equal(m.hash.lastDiff.match, false);
    assert.equal(m.hash.lastDiff.expected, sha(want));
    assert.equal(m.hash.lastDiff.computed, sha(want.replace('"step":1', '"step":2')));
    // An operation that cannot apply is reported, not thrown.
    m.apply({ message: { stateDiff: { header: header(4), operations: [{ op: "OP_TYPE_REPLACE", path: "/nope/x", value: b64("1") }] } } }, true);
    assert.match(m.stateErrors.at(-1), /^seq 4: /);
    // A checkpoint replaces the state; its checksum is checked.
    const cp = '{"step":9}';
    m.apply({ message: { checkpoint: { header: header(5), state: b64(cp), stateType: "json", checksum: Buffer.from(sha(cp), "hex").toString("base64") } } }, true);
    assert.equal(R.canonical(m.state), cp);
    assert.equal(m.hash.last.match, true);
  });

  it("keys node states, calls and the timeline by sequence: records applied twice or out of order change nothing", () => {
    const ev = (seq, type, node, extra) => ({ message: { event: Object.assign({ header: header(seq), eventType: "EVENT_TYPE_" + type, nodeId: node }, extra || {}) } });
    const recs = [
      ev(1, "NODE_START", "a"), ev(2, "LLM_START", "a", { llmRequestId: "r1" }),
      { message: { tokenChunk: { header: header(3), requestId: "r1", text: "Hel" } } },
      { message: { tokenChunk: { header: header(4), requestId: "r1", text: "lo", chunkIndex: 1, isFinal: true, finishReason: "FINISH_REASON_STOP" } } },
      ev(5, "NODE_END", "a", { attributes: { success: { boolValue: true } } }), ev(6, "NODE_START", "b"),
      { message: { toolExecution: { header: header(7), callId: "c1", toolName: "search", stage: "TOOL_STAGE_REQUESTED", arguments: b64('{"q":1}') } } },
      { message: { toolExecution: { header: header(8), callId: "c1", toolName: "search", stage: "TOOL_STAGE_FAILED", error: "timeout" } } },
      { message: { eventBatch: { header: { threadId: "t1" }, events: [ev(9, "NODE_PROGRESS", "b").message.event, { header: { threadId: "other", sequence: "1" }, eventType: "EVENT_TYPE_NODE_START", nodeId: "zz" }] } } },
      ev(10, "NODE_ERROR", "b"),
    ];
    const view = (m) => R.canonical([m.nodes, m.llm, m.tools, m.timeline.map((e) => e.seq), m.maxSeq]);
    const inOrder = new R.RunModel("t1");
    for (const r of recs) inOrder.apply(r, false);
    const shuffled = new R.RunModel("t1");
    for (const r of [...recs].reverse().concat(recs)) shuffled.apply(r, false);
    assert.equal(view(shuffled), view(inOrder));
    const plain = (v) => JSON.parse(JSON.stringify(v)); // out of the vm's realm
    assert.deepEqual(plain(Object.fromEntries(Object.entries(inOrder.nodes).map(([k, v]) => [k, v.status]))), { a: "done", b: "failed" });
    const call = plain(inOrder.llm.r1);
    assert.deepEqual([call.node, call.chunks, call.final, call.finish], ["a", { 0: "Hel", 1: "lo" }, true, "STOP"]);
    assert.deepEqual(plain([inOrder.tools.c1.stage, inOrder.tools.c1.args, inOrder.tools.c1.error]), ["FAILED", '{"q":1}', "timeout"]);
    assert.deepEqual(plain(inOrder.timeline.map((e) => e.seq)), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], "the other thread's event is not this run's");
    const back = R.RunModel.restore(JSON.parse(JSON.stringify(inOrder)));
    assert.equal(view(back), view(inOrder), "a snapshot restores the same model");
  });
});

async function probe() {
  if (!URL_) return "DASHSTREAM_URL is not set";
  try {
    const r = await fetch(new URL("api/threads?limit=1", URL_));
    if (r.status !== 200) return "the gateway has no run index (GET /api/threads: " + r.status + ")";
  } catch (e) {
    return "the gateway does not answer: " + e.message;
  }
  return false;
}

const skip = await probe();

describe("built-in UI: runs list and run view", { skip }, () => {
  const R = loadModel();
  let browser, context, page;
  const sockets = [];
  const problems = [];
  let chosen = "";

  before(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, timeout: 20000,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"] });
    context = await browser.newContext({ viewport: { width: 1400, height: 1100 } });
    context.setDefaultTimeout(10000);
    page = await context.newPage();
    page.on("pageerror", (e) => problems.push("pageerror: " + e.message));
    page.on("console", (m) => { if (m.type() === "error" && !/^Failed to load resource/.test(m.text())) problems.push("console: " + m.text()); });
    page.on("response", (r) => { if (r.status() >= 400 && !r.url().endsWith("/favicon.ico")) problems.push(r.status() + " " + r.url()); });
    page.on("websocket", (ws) => {
      const sock = { url: ws.url(), frames: [] };
      sockets.push(sock);
      ws.on("framesent", (f) => sock.frames.push({ dir: "out", payload: f.payload }));
      ws.on("framereceived", (f) => sock.frames.push({ dir: "in", payload: f.payload }));
    });
  });

  after(async () => { if (browser) await browser.close(); });

  const snap = () => page.evaluate(() => window.__dashstreamRun.snapshot());
  const inbound = (sock) => sock.frames.filter((f) => f.dir === "in").map((f) => (typeof f.payload === "string" ? JSON.parse(f.payload) : { binary: true }));
  const firstSent = (sock) => JSON.parse(sock.frames.find((f) => f.dir === "out").payload);
  const runSocket = (n) => waitFor("the run view's socket", () => sockets.length > n && sockets.at(-1).frames.some((f) => f.dir === "out") && sockets.at(-1), 10000);

  it("lists the runs of the run index with graph, status, age and a live badge, refreshing", async () => {
    await page.goto(URL_, { waitUntil: "domcontentloaded" });
    const rows = () => page.$$eval("#runs-index tr.run", (trs) => trs.map((tr) => ({ ...tr.dataset, cells: [...tr.cells].map((c) => c.textContent), href: tr.querySelector("a").getAttribute("href") })));
    const first = await waitFor("runs listed", async () => { const r = await rows(); return r.length >= 2 && r; }, 15000);
    const index = await getJSON("api/threads?limit=50");
    const byId = new Map(index.threads.map((t) => [t.thread_id, t]));
    let known = 0;
    for (const r of first) {
      assert.ok(["running", "completed", "failed"].includes(r.status), JSON.stringify(r));
      assert.equal(r.href, "run.html?thread=" + encodeURIComponent(r.thread));
      assert.equal(r.cells[0], r.thread);
      assert.match(r.cells[4], /^\d+ (s|min|h)$/, "age");
      const t = byId.get(r.thread);
      if (!t) continue; // the index moved on between the two reads
      known++;
      assert.equal(r.cells[1], t.graph_name);
      assert.ok(r.cells[1].length > 0, "the demo's runs have a graph name");
      if (r.live === "true") assert.equal(t.status, "running", "LIVE only on a running run");
    }
    assert.ok(known >= 1, "rows are the index's runs");
    await waitFor("a LIVE badge", () => page.$("#runs-index tr.run[data-live=true] .badge.live"), 15000);
    const note = await page.textContent("#runs-note");
    await waitFor("a refresh", async () => (await page.textContent("#runs-note")) !== note, 10000);
    const shot = path.join(SHOTS, "ui-runs-list.png");
    await page.screenshot({ path: shot, fullPage: true });
    console.log("screenshot: " + shot);
  });

  it("opens a run mid-way over v2 (thread filter, join at its last full state) with the correct state at once", async () => {
    // A running run that has gone past its first full state: opened mid-way.
    const pick = async () => {
      const idx = await getJSON("api/threads?status=running&limit=100");
      return idx.threads.filter((t) => t.latest_full_state && Number(t.latest_full_state.sequence) > 1 && t.record_count >= 10)
        .sort((a, b) => b.last_timestamp_us - a.last_timestamp_us)[0];
    };
    const run = await waitFor("a running run past its first full state", pick, 30000);
    chosen = run.thread_id;
    const n = sockets.length;
    // Chosen in the runs list (the page is still the list of the test above).
    const link = "#runs-index tr.run[data-thread=" + JSON.stringify(chosen) + "] a";
    await page.waitForSelector(link, { timeout: 15000 });
    await Promise.all([page.waitForURL(/run\.html\?thread=/), page.click(link)]);
    assert.equal(new URL(page.url()).searchParams.get("thread"), chosen);
    const sock = await runSocket(n);
    await page.waitForFunction(() => window.__dashstreamRun.snapshot().joined, null, { timeout: 15000 });
    // The state at once: when the join (or, without one, the history) is in.
    await page.waitForFunction(() => { const s = window.__dashstreamRun.snapshot(); return !s.bridging && s.stateHash; }, null, { timeout: 5000 });
    const atJoin = await snap();

    assert.equal(await page.evaluate(() => window.__dashstreamRun.socket.protocol), "dashstream.v2");
    const resume = firstSent(sock);
    assert.deepEqual({ type: resume.type, from: resume.from, join: resume.join, format: resume.format, filter: resume.filter },
      { type: "resume", from: "latest", join: "checkpoint", format: "json", filter: { threads: [chosen] } });

    // What the join sent: records of this thread only, the first one a full state.
    const frames = inbound(sock);
    const rc = frames.findIndex((m) => m.type === "replay_complete");
    assert.ok(rc >= 0, "replay_complete");
    const replayed = frames.slice(0, rc);
    assert.ok(replayed.every((m) => m.type === "record"), "only JSON records before replay_complete");
    for (const m of frames.filter((f) => f.type === "record")) {
      const body = Object.values(m.message)[0];
      const threads = body.events ? body.events.map((e) => e.header.threadId) : [body.header.threadId];
      assert.ok(threads.includes(chosen), "filtered to the run: " + JSON.stringify(threads));
    }
    const log = await page.$$eval("#events li", (lis) => lis.map((li) => li.textContent));
    assert.ok(replayed.length >= 1, "the join replays the run from its last full state: " + JSON.stringify(frames[rc]));
    const head = replayed[0].message;
    const full = head.checkpoint || (head.stateDiff && head.stateDiff.fullState) ||
      (head.event && head.event.eventType === "EVENT_TYPE_GRAPH_START" && head.event.attributes.initial_state_json);
    assert.ok(full, "the join starts at a full-state record: " + JSON.stringify(head).slice(0, 200));
    assert.doesNotMatch(atJoin.stateFrom, /history/, "the state came from the join");
    assert.ok(!log.some((t) => /no full state from the join/.test(t)), JSON.stringify(log));

    // The state at once, equal to the one this test computes from the history.
    assert.ok(atJoin.stateHash, "a state as soon as the join completed");
    assert.deepEqual(atJoin.stateErrors, []);
    const hist = await history(chosen);
    const own = stateAt(R, chosen, hist, atJoin.stateSeq);
    assert.equal(own.seq, atJoin.stateSeq);
    assert.equal(atJoin.stateHash, own.hash, "the page's state at seq " + atJoin.stateSeq + " is the history's");

    // zstd records decoded: the demo frames its larger values (GRAPH_START
    // with the schema, checkpoints) with zstd; they reach the page decoded.
    const zstd = hist.filter((r) => JSON.stringify(r.message).includes('"compression":"COMPRESSION_ZSTD"'));
    assert.ok(zstd.length >= 1, "the run has zstd-framed records");
    const shownSeqs = new Set(await page.evaluate(() => window.__dashstreamRun.sequences()));
    assert.ok(zstd.some((r) => r.sequences.some((q) => shownSeqs.has(Number(q)))), "a zstd-framed record is shown decoded");

    // The graph from graph_schema_json, with node states.
    await page.waitForSelector("#graph svg g.node");
    const graph = await page.$$eval("#graph svg g.node", (gs) => gs.map((g) => [g.dataset.node, g.dataset.state]));
    const schema = JSON.parse(hist[0].message.event.attributes.graph_schema_json.stringValue);
    assert.deepEqual(graph.map((g) => g[0]).sort(), schema.nodes.map((x) => x.name).sort());
    for (const [, s] of graph) assert.ok(["pending", "running", "done", "failed"].includes(s));
    assert.ok(graph.some(([, s]) => s !== "pending"), "nodes that ran before the join show their state: " + JSON.stringify(graph));
    assert.equal(await page.$$eval("#graph svg path.edge", (e) => e.length), schema.edges.length);

    // The state hash is checked against the run's state_hash: a match.
    // (a run that ends first has its GRAPH_END final_state_hash checked instead).
    const checked = await waitFor("a state hash checked after the join", async () => {
      const s = await snap();
      return s.hash.last && (s.hash.lastDiff || s.status !== "running") && s;
    }, 30000);
    assert.equal(checked.hash.mismatches, 0, JSON.stringify(checked.hash));
    await page.waitForSelector("#hash[data-match=match]");
    assert.match(await page.textContent("#hash"), /^✓ match [0-9a-f]{12}$/);
    assert.equal(checked.violations, 0);
    assert.ok(checked.llm + checked.tools >= 1, "LLM or tool calls shown");
    assert.ok((await page.$$("#timeline tr")).length >= 5, "a timeline");
    assert.equal(await page.getAttribute("#graph", "class"), "graph");
    const shot = path.join(SHOTS, "ui-run-view.png");
    await page.screenshot({ path: shot, fullPage: true });
    console.log("screenshot: " + shot);
  });

  it("resumes across a reconnect and a reload without loss: the sequences applied stay contiguous", async () => {
    // A reconnect: the socket is cut, the page resumes from its cursor.
    let n = sockets.length;
    const cut = await page.evaluate(() => { const s = window.__dashstreamRun.snapshot(); window.__dashstreamRun.socket.close(4000, "e2e cut"); return s; });
    let sock = await runSocket(n);
    let resume = firstSent(sock);
    assert.equal(resume.from, "cursor");
    assert.equal(resume.join, undefined);
    assert.deepEqual(resume.filter, { threads: [chosen] });
    assert.deepEqual(resume.lastOffsetsByPartition, cut.cursor);
    await page.waitForFunction(() => window.__dashstreamRun.snapshot().conn === "live", null, { timeout: 15000 });

    // A reload: the cursor and the state come back from sessionStorage.
    await page.waitForTimeout(1500); // the page saves once a second
    const pre = await snap();
    n = sockets.length;
    await page.reload({ waitUntil: "domcontentloaded" });
    sock = await runSocket(n);
    resume = firstSent(sock);
    assert.equal(resume.from, "cursor", JSON.stringify(resume));
    assert.equal(resume.join, undefined);
    // The page saves on pagehide too: the stored cursor is at least the one read before.
    for (const [p, o] of Object.entries(pre.cursor)) assert.ok(BigInt(resume.lastOffsetsByPartition[p]) >= BigInt(o), "p" + p + " resumes from the cursor it had");
    await page.waitForFunction(() => window.__dashstreamRun.snapshot().conn === "live", null, { timeout: 15000 });
    for (const m of inbound(sock).filter((f) => f.type === "record")) {
      const p = String(m.partition);
      assert.ok(BigInt(m.offset) > BigInt(resume.lastOffsetsByPartition[p] ?? -1), "p" + p + "@" + m.offset + " at or before the resume cursor");
    }
    const post = await snap();
    assert.equal(post.reconnects, 0, "a fresh page");
    if (pre.status === "running") await waitFor("records after the reload", async () => (await snap()).maxSeq > pre.maxSeq, 20000).catch(() => null);
    const fin = await snap();
    assert.equal(fin.violations, 0);
    assert.deepEqual(fin.stateErrors, []);
    assert.equal(fin.hash.mismatches, 0, JSON.stringify(fin.hash));
    const seqs = await page.evaluate(() => window.__dashstreamRun.sequences());
    assert.equal(seqs[0], 1, "the run's events from its first");
    assert.deepEqual(holes(seqs), [], "no sequence lost over the join, the cut and the reload");
    if (fin.stateHash) {
      const own = stateAt(R, chosen, await history(chosen), fin.stateSeq);
      assert.equal(fin.stateHash, own.hash, "after the reload the state at seq " + fin.stateSeq + " is the history's");
    }
    const log = await page.$$eval("#events li", (lis) => lis.map((li) => li.textContent));
    assert.ok(log.some((t) => /restored the run and its cursor/.test(t)), JSON.stringify(log));
    const shot = path.join(SHOTS, "ui-run-view-after-reload.png");
    await page.screenshot({ path: shot, fullPage: true });
    console.log("screenshot: " + shot);
  });

  it("shows a run that has ended (not joined: no longer active) with its final state from the history", async () => {
    const run = await waitFor("a completed run", async () => {
      const idx = await getJSON("api/threads?status=completed&limit=100");
      return idx.threads.find((t) => t.latest_full_state && t.thread_id !== chosen);
    }, 60000);
    const n = sockets.length;
    await page.goto(new URL("run.html?thread=" + encodeURIComponent(run.thread_id), URL_).href, { waitUntil: "domcontentloaded" });
    const sock = await runSocket(n);
    await page.waitForFunction(() => { const s = window.__dashstreamRun.snapshot(); return s.joined && !s.bridging && s.stateHash && s.history === "done"; }, null, { timeout: 15000 });
    const s = await snap();
    assert.equal(s.status, "completed");
    const frames = inbound(sock);
    const rc = frames.findIndex((m) => m.type === "replay_complete");
    assert.equal(frames.slice(0, rc).filter((m) => m.type === "record").length, 0, "an ended run is not joined");
    assert.match(s.stateFrom, /\(history\)$/);
    const hist = await history(run.thread_id);
    const own = stateAt(R, run.thread_id, hist, Number.MAX_SAFE_INTEGER);
    assert.equal(s.stateHash, own.hash, "the final state is the history's");
    // GRAPH_END's final_state_hash was checked against it.
    assert.equal(s.hash.last.what, "GRAPH_END final_state_hash");
    assert.equal(s.hash.mismatches, 0, JSON.stringify(s.hash));
    await page.waitForSelector("#hash[data-match=match]");
    const graph = await page.$$eval("#graph svg g.node", (gs) => gs.map((g) => g.dataset.state));
    assert.ok(graph.length >= 2 && graph.every((x) => x === "done" || x === "failed" || x === "pending"), JSON.stringify(graph));
    assert.equal(await page.isHidden("#run-live"), true, "no LIVE badge on an ended run");
    assert.deepEqual(holes(await page.evaluate(() => window.__dashstreamRun.sequences())), []);
    const shot = path.join(SHOTS, "ui-run-view-completed.png");
    await page.screenshot({ path: shot, fullPage: true });
    console.log("screenshot: " + shot);
  });

  it("had no page errors, console errors or failed requests", () => {
    assert.deepEqual(problems, []);
  });
});
