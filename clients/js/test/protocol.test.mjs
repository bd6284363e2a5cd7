// Protocol handling without a gateway: v2 envelopes, JSON records, resume
// frames, control frames and protocol errors. The server here is a `ws`
// server that writes frames built from docs/PROTOCOL.md §3.1–§3.8 by hand — a
// stand-in where the real gateway cannot produce the case (it never breaks
// the protocol, and frames in an exact order or state are hard to provoke);
// the real gateway is exercised in gateway.test.mjs.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import WebSocket, { WebSocketServer } from "ws";
import { toJson } from "@bufbuild/protobuf";
import {
  DashStreamClient,
  DashStreamMessageSchema,
  decodeRecord,
  LocalStorageCursorStore,
  MemoryCursorStore,
  ProtocolError,
  encodeV2Binary,
  jwtExp,
  parseOffset,
  parseV2Binary,
} from "../dist/index.js";

const DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../testdata/dashstream");
const vec = (name) => new Uint8Array(fs.readFileSync(path.join(DIR, name)));
const waitFor = async (what, fn, ms = 5000) => {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe("v2 envelope", () => {
  it("parses partition and offset big-endian, the value after 13 bytes", () => {
    const value = vec("event_graph_start_plain.bin");
    const f = new Uint8Array(13 + value.length);
    f[0] = 0x01;
    f.set([0x00, 0x00, 0x01, 0x02], 1); // partition 258
    f.set([0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 5); // offset 2^63-1
    f.set(value, 13);
    const r = parseV2Binary(f);
    assert.equal(r.partition, 258);
    assert.equal(r.offset, "9223372036854775807");
    assert.deepEqual(r.value, value);
    assert.deepEqual(encodeV2Binary(258, 9223372036854775807n, value), f);
  });
  it("rejects short frames, unknown kinds and negative offsets", () => {
    assert.throws(() => parseV2Binary(new Uint8Array(12)), ProtocolError);
    assert.throws(() => parseV2Binary(new Uint8Array([0x02, ...new Uint8Array(12)])), ProtocolError);
    const neg = encodeV2Binary(0, 0n, new Uint8Array());
    neg.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 5);
    assert.throws(() => parseV2Binary(neg), /negative offset/);
  });
  it("reads offsets exactly, as strings or integers", () => {
    assert.equal(parseOffset("9223372036854775807"), 9223372036854775807n);
    assert.equal(parseOffset("9223372036854775808"), undefined);
    assert.equal(parseOffset(-1), -1n);
    assert.equal(parseOffset("-2"), undefined);
    assert.equal(parseOffset("01"), undefined);
    assert.equal(parseOffset(2 ** 53), undefined); // not exact as a JSON number
  });
});

describe("cursor stores", () => {
  it("LocalStorageCursorStore keeps one item per key and ignores damaged ones", () => {
    const items = new Map();
    const storage = { getItem: (k) => items.get(k) ?? null, setItem: (k, v) => items.set(k, v), removeItem: (k) => items.delete(k) };
    const s = new LocalStorageCursorStore({ storage, prefix: "t." });
    s.save("a:ns1", { 0: "5", 2: "-1" });
    assert.deepEqual(s.load("a:ns1"), { 0: "5", 2: "-1" });
    assert.equal(s.load("a:ns2"), undefined);
    items.set("t.bad", "{not json");
    assert.equal(s.load("bad"), undefined);
    items.set("t.odd", JSON.stringify({ 0: "x", "01": "3", 1: "7" }));
    assert.deepEqual(s.load("odd"), { 1: "7" });
    s.delete("a:ns1");
    assert.equal(items.has("t.a:ns1"), false);
  });
  it("jwtExp reads exp of a JWT", () => {
    const b = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
    assert.equal(jwtExp(`${b({ alg: "HS256" })}.${b({ exp: 1234 })}.sig`), 1234);
    assert.equal(jwtExp("static-token"), undefined);
  });
});

// A scripted server: each connection's first message (the resume) is recorded
// and answered by script(ws, resume, n) where n counts connections.
class ScriptServer {
  constructor(script, { v2 = true, namespace } = {}) {
    this.resumes = [];
    this.protocols = [];
    this.headers = [];
    this.conns = 0;
    this.namespace = namespace;
    this.http = http.createServer((req, res) => {
      if (req.url === "/version" && this.namespace !== undefined) res.writeHead(200).end(JSON.stringify({ resume_namespace: this.namespace }));
      else res.writeHead(404).end();
    });
    this.http.listen(0, "127.0.0.1");
    this.wss = new WebSocketServer({
      server: this.http,
      handleProtocols: (set) => (v2 && set.has("dashstream.v2") ? "dashstream.v2" : set.has("bearer") ? "bearer" : false),
    });
    this.wss.on("connection", (ws, req) => {
      const n = this.conns++;
      this.protocols.push(req.headers["sec-websocket-protocol"] ?? "");
      this.headers.push(req.headers.authorization ?? "");
      ws.once("message", (data) => {
        const resume = JSON.parse(String(data));
        this.resumes.push(resume);
        script(ws, resume, n);
      });
    });
  }
  get url() {
    return `ws://127.0.0.1:${this.http.address().port}/ws`;
  }
  close() {
    for (const c of this.wss.clients) c.terminate();
    this.wss.close();
    return new Promise((r) => this.http.close(r));
  }
}

const json = (ws, o) => ws.send(JSON.stringify(o));

describe("DashStreamClient on v2 (scripted server)", () => {
  let srv;
  after(() => srv?.close());

  it("binary records: resume carries filter and namespace, duplicates are dropped, a broken frame reconnects", async () => {
    const plain = vec("event_node_end_plain.bin");
    const zstd = vec("event_llm_end_zstd.bin");
    srv = new ScriptServer((ws, resume, n) => {
      if (n === 0) {
        ws.send(encodeV2Binary(0, 10n, plain));
        ws.send(encodeV2Binary(1, 4n, zstd));
        json(ws, { type: "replay_complete", totalReplayed: 2, capped: false, mode: "cursor", lastOffsetsByPartition: { 0: "10", 1: "4", 2: "7" } });
        json(ws, { type: "skipped", partition: 0, offset: "11", error_type: "bad_zstd" });
        ws.send(encodeV2Binary(0, 12n, plain));
        ws.send(new Uint8Array([0x01, 0x00])); // a broken envelope
      } else {
        // the resume after the reconnect, answered with an overlap
        ws.send(encodeV2Binary(0, 12n, plain)); // already applied
        ws.send(encodeV2Binary(0, 13n, plain));
        json(ws, { type: "gap", partition: 1, fromOffset: "5", toOffset: "9", count: 5, severity: "info", reason: "retention" });
        json(ws, { type: "replay_complete", totalReplayed: 1, capped: false, mode: "cursor", lastOffsetsByPartition: { 0: "13" } });
      }
    });
    await new Promise((r) => (srv.http.listening ? r() : srv.http.once("listening", r)));
    const store = new MemoryCursorStore();
    store.save("v2:", { 0: "9", 1: "3" });
    const got = [];
    const errors = [];
    const c = new DashStreamClient({
      url: srv.url,
      WebSocket,
      protocol: 2,
      store,
      name: "v2",
      versionUrl: null,
      token: "tok",
      filter: { threads: ["tv-thread-1"], types: ["event"] },
      backoff: { initialMs: 20, maxMs: 50 },
    });
    c.on("record", (r) => got.push([r.partition, r.offset, r.framing, r.type, r.header?.threadId]));
    c.on("error", (e) => errors.push(e));
    c.start();
    await waitFor("the second connection's records", () => got.length === 4);
    await waitFor("the second replay_complete", () => c.cursor().offsets["0"] === "13" && c.cursor().offsets["1"] === "9");
    await new Promise((r) => setTimeout(r, 50)); // a duplicate would show now
    await c.close();
    assert.deepEqual(got, [
      [0, "10", "plain", "event", "tv-thread-1"],
      [1, "4", "zstd", "event", "tv-thread-1"],
      [0, "12", "plain", "event", "tv-thread-1"],
      [0, "13", "plain", "event", "tv-thread-1"],
    ], "0/12 came again after the reconnect and was dropped");
    assert.deepEqual(srv.resumes[0], {
      type: "resume", from: "cursor", lastOffsetsByPartition: { 0: "9", 1: "3" },
      filter: { threads: ["tv-thread-1"], types: ["event"] },
    });
    assert.deepEqual(srv.resumes[1].lastOffsetsByPartition, { 0: "12", 1: "4", 2: "7" }, "replay_complete and skipped advanced the cursor");
    assert.equal(srv.protocols[0], "dashstream.v2");
    assert.equal(srv.headers[0], "Bearer tok", "Node with ws: the token travels in the header");
    assert.ok(errors.some((e) => e instanceof ProtocolError), errors.map(String).join("; "));
    assert.deepEqual(c.cursor().offsets, { 0: "13", 1: "9", 2: "7" }, "gap moved partition 1 to its end");
    assert.deepEqual(store.load("v2:"), { 0: "13", 1: "9", 2: "7" });
  });

  it("JSON records: format and join in the first resume, typed messages, browser-style bearer subprotocol", async () => {
    const msgs = ["token_chunk_plain.bin", "state_diff_full_state_plain.bin"].map((f) =>
      toJson(DashStreamMessageSchema, decodeRecord(vec(f)).message),
    );
    await srv?.close();
    srv = new ScriptServer((ws, resume, n) => {
      if (n === 0) {
        json(ws, { type: "record", partition: 2, offset: "40", message: msgs[0] });
        json(ws, { type: "record", partition: 2, offset: "41", message: msgs[1] });
        json(ws, { type: "replay_complete", totalReplayed: 2, capped: false, mode: "latest", lastOffsetsByPartition: { 2: "41", 0: "3" } });
        ws.close(1012, "topic re-created");
      } else {
        json(ws, { type: "cursor_stale", partition: 0, requested: "3", oldest: "0" });
        json(ws, { type: "record", partition: 0, offset: "0", message: msgs[0] });
        json(ws, { type: "replay_complete", totalReplayed: 1, capped: false, mode: "cursor", lastOffsetsByPartition: { 0: "0", 2: "41" } });
      }
    });
    await new Promise((r) => (srv.http.listening ? r() : srv.http.once("listening", r)));
    const got = [];
    const stale = [];
    const reconnects = [];
    const c = new DashStreamClient({
      url: srv.url, WebSocket, protocol: 2, format: "json", join: "checkpoint", versionUrl: null,
      token: "tok", tokenTransport: "subprotocol", backoff: { initialMs: 5000 },
    });
    c.on("record", (r) => got.push(r));
    c.on("cursor_stale", (f) => stale.push(f));
    c.on("reconnect", (r) => reconnects.push(r));
    c.start();
    await waitFor("the second connection", () => got.length === 3, 3000);
    await waitFor("its replay_complete", () => c.cursor().offsets["0"] === "0");
    await c.close();
    assert.deepEqual(srv.protocols[0].split(",").map((x) => x.trim()), ["dashstream.v2", "bearer", "tok"]);
    assert.equal(srv.headers[0], "");
    assert.deepEqual(srv.resumes[0], { type: "resume", from: "latest", lastOffsetsByPartition: {}, format: "json", join: "checkpoint" });
    assert.deepEqual(srv.resumes[1], { type: "resume", from: "cursor", lastOffsetsByPartition: { 0: "3", 2: "41" }, format: "json" }, "join only on a start from latest");
    assert.equal(reconnects[0].code, 1012);
    assert.ok(reconnects[0].delayMs < 300, "1012 reconnects soon, not after the 5 s backoff");
    assert.deepEqual(got.map((r) => [r.partition, r.offset, r.type]), [[2, "40", "token_chunk"], [2, "41", "state_diff"], [0, "0", "token_chunk"]]);
    assert.equal(got[0].message.message.value.requestId, "llm-req-0002");
    assert.equal(got[0].header.sequence, 10n);
    assert.ok(got[1].message.message.value.fullState.length > 0);
    assert.deepEqual(stale.map((f) => f.partition), [0]);
  });
});

describe("DashStreamClient on v1 (scripted server)", () => {
  let srv;
  after(() => srv?.close());

  it("breaks and reconnects on a binary frame without its cursor or a cursor followed by a text frame", async () => {
    const v = vec("event_node_end_plain.bin");
    srv = new ScriptServer((ws, resume, n) => {
      json(ws, { type: "cursor", partition: 0, offset: String(n * 2) });
      ws.send(v);
      if (n === 0) ws.send(v); // no cursor
      if (n === 1) {
        json(ws, { type: "cursor", partition: 0, offset: "3" });
        json(ws, { type: "pong" }); // between a cursor and its record
      }
      if (n === 2) json(ws, { type: "replay_complete", totalReplayed: 1, capped: false, mode: "cursor", lastOffsetsByPartition: { 0: "4" } });
    }, { v2: false });
    await new Promise((r) => (srv.http.listening ? r() : srv.http.once("listening", r)));
    const got = [];
    const errors = [];
    const c = new DashStreamClient({ url: srv.url, WebSocket, versionUrl: null, backoff: { initialMs: 10, maxMs: 20 } });
    c.on("record", (r) => got.push(r.offset));
    c.on("error", (e) => errors.push(e.message));
    c.start();
    await waitFor("three connections", () => srv.resumes.length === 3 && c.cursor().offsets["0"] === "4");
    await c.close();
    assert.deepEqual(got, ["0", "2", "4"]);
    assert.deepEqual(srv.resumes.map((r) => r.lastOffsetsByPartition), [{}, { 0: "0" }, { 0: "2" }]);
    assert.ok(errors.some((m) => /without its cursor/.test(m)) && errors.some((m) => /between a cursor and its record/.test(m)), errors.join("; "));
  });

  it("a failing handler leaves its record unapplied: it comes back after the reconnect", async () => {
    const v = vec("event_node_end_plain.bin");
    await srv?.close();
    srv = new ScriptServer((ws, resume) => {
      const after = BigInt(resume.lastOffsetsByPartition["0"] ?? "-1");
      for (let o = after + 1n; o <= 3n; o++) {
        json(ws, { type: "cursor", partition: 0, offset: String(o) });
        ws.send(v);
      }
    }, { v2: false });
    await new Promise((r) => (srv.http.listening ? r() : srv.http.once("listening", r)));
    const applied = [];
    let failOnce = true;
    const c = new DashStreamClient({ url: srv.url, WebSocket, versionUrl: null, backoff: { initialMs: 10 } });
    c.on("record", async (r) => {
      await new Promise((res) => setTimeout(res, 5)); // an asynchronous apply
      if (r.offset === "2" && failOnce) {
        failOnce = false;
        throw new Error("apply failed");
      }
      applied.push(r.offset);
    });
    c.start();
    await waitFor("all records", () => applied.length >= 4);
    await new Promise((r) => setTimeout(r, 50));
    await c.close();
    assert.deepEqual(applied, ["0", "1", "2", "3"], "every record once, in order");
    assert.deepEqual(srv.resumes[1].lastOffsetsByPartition, { 0: "1" });
  });

  it("records(): a record counts as applied when the loop asks for the next one", async () => {
    const v = vec("event_node_end_plain.bin");
    await srv?.close();
    srv = new ScriptServer((ws, resume) => {
      const after = BigInt(resume.lastOffsetsByPartition["0"] ?? "-1");
      for (let o = after + 1n; o <= 5n; o++) {
        json(ws, { type: "cursor", partition: 0, offset: String(o) });
        ws.send(v);
      }
    }, { v2: false });
    await new Promise((r) => (srv.http.listening ? r() : srv.http.once("listening", r)));
    const store = new MemoryCursorStore();
    const run = async (stopAt) => {
      const seen = [];
      const c = new DashStreamClient({ url: srv.url, WebSocket, versionUrl: null, store });
      for await (const r of c.records()) {
        seen.push(r.offset);
        if (r.offset === stopAt) break; // r is not applied
      }
      return seen;
    };
    assert.deepEqual(await run("2"), ["0", "1", "2"]);
    assert.deepEqual(store.load("default:"), { 0: "1" });
    assert.deepEqual(await run("5"), ["2", "3", "4", "5"]);
  });

  it("keys cursors by resume_namespace: a new namespace gets the old cursor with its namespace, then a cursor of its own", async () => {
    const v = vec("event_node_end_plain.bin");
    await srv?.close();
    srv = new ScriptServer((ws, resume, n) => {
      if (n === 0) {
        json(ws, { type: "cursor", partition: 0, offset: "5" });
        ws.send(v);
        json(ws, { type: "replay_complete", totalReplayed: 1, capped: false, mode: "cursor", lastOffsetsByPartition: { 0: "5" } });
        srv.namespace = "bbbb"; // the topic was re-created
        setTimeout(() => ws.close(1012, "topic re-created"), 20);
      } else {
        json(ws, { type: "cursor_stale", partition: 0, requested: "5", oldest: "0" });
        json(ws, { type: "cursor", partition: 0, offset: "0" });
        ws.send(v);
        json(ws, { type: "replay_complete", totalReplayed: 1, capped: false, mode: "cursor", lastOffsetsByPartition: { 0: "0" } });
      }
    }, { v2: false, namespace: "aaaa" });
    await new Promise((r) => (srv.http.listening ? r() : srv.http.once("listening", r)));
    const items = new Map();
    const storage = { getItem: (k) => items.get(k) ?? null, setItem: (k, val) => items.set(k, val), removeItem: (k) => items.delete(k) };
    const store = new LocalStorageCursorStore({ storage });
    store.save("default:aaaa", { 0: "4" });
    const got = [];
    const c = new DashStreamClient({ url: srv.url, WebSocket, store, from: "earliest" });
    c.on("record", (r) => got.push(r.offset));
    c.start();
    await waitFor("the record of the new topic", () => got.length === 2 && c.cursor().offsets["0"] === "0");
    await c.close();
    assert.deepEqual(got, ["5", "0"]);
    assert.deepEqual(srv.resumes[0], { type: "resume", from: "cursor", lastOffsetsByPartition: { 0: "4" }, namespace: "aaaa" });
    assert.deepEqual(srv.resumes[1], { type: "resume", from: "cursor", lastOffsetsByPartition: { 0: "5" }, namespace: "aaaa" },
      "the old cursor goes with the namespace it belongs to (the gateway answers cursor_stale)");
    assert.equal(c.cursor().namespace, "bbbb");
    assert.deepEqual(JSON.parse(items.get("dashstream.cursor.default:aaaa")), { 0: "5" });
    assert.deepEqual(JSON.parse(items.get("dashstream.cursor.default:bbbb")), { 0: "0" });
  });

  it("a silent connection (no answer to ping) is closed and resumed; the token can travel as ?token=", async () => {
    await srv?.close();
    srv = new ScriptServer((ws, resume, n) => {
      if (n === 0) json(ws, { type: "replay_complete", totalReplayed: 0, capped: false, mode: "latest", lastOffsetsByPartition: { 0: "7" } });
      // then silence: pings are not answered (a half-open connection)
    }, { v2: false });
    const urls = [];
    srv.wss.on("connection", (ws, req) => urls.push(req.url));
    await new Promise((r) => (srv.http.listening ? r() : srv.http.once("listening", r)));
    const reconnects = [];
    const c = new DashStreamClient({
      url: srv.url, WebSocket, versionUrl: null, token: "q-tok", tokenTransport: "query",
      pingIntervalMs: 100, pongTimeoutMs: 200, backoff: { initialMs: 10 },
    });
    c.on("reconnect", (r) => reconnects.push(r));
    c.start();
    await waitFor("a second connection", () => srv.resumes.length >= 2, 5000);
    await c.close();
    assert.equal(reconnects[0].code, 4002, JSON.stringify(reconnects[0]));
    assert.deepEqual(srv.resumes[1].lastOffsetsByPartition, { 0: "7" });
    assert.equal(urls[0], "/ws?token=q-tok");
    assert.equal(srv.headers[0], "");
  });

  it("stops reading while too many frames wait to be applied, and loses nothing", async () => {
    const v = vec("event_node_end_plain.bin");
    await srv?.close();
    srv = new ScriptServer((ws) => {
      for (let o = 0; o < 60; o++) {
        json(ws, { type: "cursor", partition: 0, offset: String(o) });
        ws.send(v);
      }
    }, { v2: false });
    await new Promise((r) => (srv.http.listening ? r() : srv.http.once("listening", r)));
    let pauses = 0;
    class CountingWebSocket extends WebSocket {
      pause() {
        pauses++;
        super.pause();
      }
    }
    const got = [];
    const c = new DashStreamClient({ url: srv.url, WebSocket: CountingWebSocket, versionUrl: null, maxQueuedFrames: 8 });
    c.on("record", async (r) => {
      await new Promise((res) => setTimeout(res, 2));
      got.push(Number(r.offset));
    });
    c.start();
    await waitFor("60 records", () => got.length >= 60, 10000);
    await c.close();
    assert.deepEqual(got, [...Array(60).keys()]);
    assert.ok(pauses >= 1, "the socket was paused");
  });
});
