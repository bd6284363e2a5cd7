// Test harness of the client's integration tests: the real gateway
// (`dashstream serve`) against the Kafka and Redis of `make services-up`, the
// repository's own demo workload as the producer (`dashstream demo` pointed
// at the same broker and topic), a TCP proxy that can cut every connection,
// and HS256 tokens.
//
// Environment (scripts/test.sh js-client sets it):
//   DASHSTREAM_BIN   the gateway binary (go build -o ... ./cmd/dashstream)
//   KAFKA_BROKERS    from .state/services.env
//   REDIS_URL        from .state/services.env
//   KAFKA_JARS_DIR   the broker's jars (topics are created with its admin client)
import { spawn, execFile } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import WebSocket from "ws";

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const BIN = process.env.DASHSTREAM_BIN || "";
export const BROKERS = process.env.KAFKA_BROKERS || "";
export const REDIS_URL = process.env.REDIS_URL || "";
const JARS = process.env.KAFKA_JARS_DIR || path.join(os.homedir(), ".cache/dashstream/kafka-4.1.1");

/** Why the integration tests cannot run here, or "" when they can. */
export function missing() {
  if (!BIN) return "DASHSTREAM_BIN is not set";
  if (!BROKERS || !REDIS_URL) return "KAFKA_BROKERS / REDIS_URL are not set (source .state/services.env)";
  return "";
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** waitFor polls fn until it returns a truthy value. */
export async function waitFor(what, fn, timeoutMs = 20000, everyMs = 100) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
    await sleep(everyMs);
  }
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** createTopics creates topics with the broker's own admin client (the test broker does not auto-create). */
export async function createTopics(partitions, ...topics) {
  await promisify(execFile)(
    "java",
    ["-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", `${JARS}/*`, path.join(HERE, "CreateTopics.java"), BROKERS, String(partitions), ...topics],
    { timeout: 90000 },
  );
}

export const SECRET = randomBytes(32).toString("hex");

/** jwt makes an HS256 token valid for ttlSec seconds. */
export function jwt(ttlSec, claims = {}) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ sub: "js-client-test", iat: now, exp: now + ttlSec, ...claims })}`;
  return `${body}.${createHmac("sha256", SECRET).update(body).digest("base64url")}`;
}

/**
 * Gateway runs `dashstream serve` (or `demo`, the producer) on a fixed port,
 * so that it can be stopped and started again at the same address.
 */
export class Gateway {
  constructor({ topic, demo = false, redis = true, auth = true, env = {}, name = "gateway" }) {
    this.topic = topic;
    this.demo = demo;
    this.redis = redis;
    this.auth = auth;
    this.extra = env;
    this.name = name;
    this.proc = null;
    this.port = 0;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `dashstream-js-${name}-`));
    this.log = path.join(this.dir, "gateway.log");
  }

  get http() {
    return `http://127.0.0.1:${this.port}/`;
  }
  get ws() {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  async start() {
    if (!this.port) this.port = await freePort();
    const env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      TMPDIR: process.env.TMPDIR || "/tmp",
      WEBSOCKET_HOST: "127.0.0.1",
      WEBSOCKET_PORT: String(this.port),
      KAFKA_BROKERS: BROKERS,
      KAFKA_TOPIC: this.topic,
      REDIS_URL: this.redis ? REDIS_URL : "",
      EXPECTED_SCHEMAS_PATH: path.join(this.dir, "expected_schemas.json"),
      SHUTDOWN_TIMEOUT_SECS: "10",
      LOG_LEVEL: "warn",
      ...(this.auth ? { WEBSOCKET_JWT_SECRET: SECRET, WEBSOCKET_JWT_LEEWAY_SECS: "0" } : {}),
      ...this.extra,
    };
    const out = fs.openSync(this.log, "a");
    this.proc = spawn(BIN, [this.demo ? "demo" : "serve"], { env, stdio: ["ignore", out, out], cwd: this.dir });
    fs.closeSync(out);
    const proc = this.proc;
    this.exited = new Promise((r) => proc.once("exit", (code, signal) => r({ code, signal })));
    await waitFor(`${this.name} /readyz`, async () => {
      if (proc.exitCode !== null) throw new Error(`${this.name} exited (${proc.exitCode}):\n${this.tail()}`);
      try {
        const res = await fetch(this.http + "readyz");
        await res.arrayBuffer();
        return res.status === 200;
      } catch {
        return false;
      }
    }, 60000, 200);
    return this;
  }

  /** stop ends the gateway: SIGTERM (a clean shutdown, clients get 1001) or SIGKILL. */
  async stop(signal = "SIGTERM") {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill(signal);
    const t = setTimeout(() => proc.kill("SIGKILL"), 20000);
    await this.exited;
    clearTimeout(t);
    this.proc = null;
  }

  tail(n = 40) {
    try {
      return fs.readFileSync(this.log, "utf8").split("\n").slice(-n).join("\n");
    } catch {
      return "";
    }
  }

  cleanup() {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Proxy forwards TCP to a port; cut() breaks every open connection at once (an abrupt close). */
export class Proxy {
  constructor(targetPort) {
    this.targetPort = targetPort;
    this.conns = new Set();
    this.cuts = 0;
    this.server = net.createServer((c) => {
      const up = net.connect(this.targetPort, "127.0.0.1");
      const pair = { c, up };
      this.conns.add(pair);
      const end = () => {
        c.destroy();
        up.destroy();
        this.conns.delete(pair);
      };
      c.on("error", end).on("close", end);
      up.on("error", end).on("close", end);
      c.pipe(up);
      up.pipe(c);
    });
  }
  async listen() {
    await new Promise((r) => this.server.listen(0, "127.0.0.1", r));
    this.port = this.server.address().port;
    return this;
  }
  get ws() {
    return `ws://127.0.0.1:${this.port}/ws`;
  }
  /** cut resets every connection; it returns how many were open. */
  cut() {
    const n = this.conns.size;
    for (const { c, up } of this.conns) {
      c.resetAndDestroy ? c.resetAndDestroy() : c.destroy();
      up.destroy();
    }
    this.conns.clear();
    this.cuts++;
    return n;
  }
  close() {
    this.cut();
    return new Promise((r) => this.server.close(r));
  }
}

/**
 * heads asks the gateway directly (a plain socket, not the client under test)
 * for its heads: the lastOffsetsByPartition of a from:"latest" resume.
 */
export function heads(wsUrl, token) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl, token ? { headers: { Authorization: `Bearer ${token}` } } : {});
    const t = setTimeout(() => {
      ws.terminate();
      reject(new Error("heads: no replay_complete"));
    }, 10000);
    ws.on("open", () => ws.send(JSON.stringify({ type: "resume", from: "latest" })));
    ws.on("message", (data, isBinary) => {
      if (isBinary) return;
      const f = JSON.parse(String(data));
      if (f.type !== "replay_complete") return;
      clearTimeout(t);
      ws.close();
      resolve(f.lastOffsetsByPartition);
    });
    ws.on("error", (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}

/** Recorder collects what a client applied and checks it: every offset exactly once, in order, none missing. */
export class Recorder {
  constructor() {
    this.byPartition = new Map(); // partition -> offsets (bigint) in the order applied
    this.records = 0;
    this.types = new Map();
    this.framings = new Map();
    this.decodeErrors = [];
  }
  add(rec) {
    let l = this.byPartition.get(rec.partition);
    if (!l) this.byPartition.set(rec.partition, (l = []));
    l.push(BigInt(rec.offset));
    this.records++;
    if (rec.decodeError) this.decodeErrors.push(`${rec.partition}/${rec.offset}: ${rec.decodeError.message}`);
    if (rec.type) this.types.set(rec.type, (this.types.get(rec.type) ?? 0) + 1);
    if (rec.framing) this.framings.set(rec.framing, (this.framings.get(rec.framing) ?? 0) + 1);
  }
  /** reached reports whether every partition of want ({p: "o"}) has been applied up to o. */
  reached(want) {
    return Object.entries(want).every(([p, o]) => {
      const l = this.byPartition.get(Number(p));
      return l && l.length && l[l.length - 1] >= BigInt(o);
    });
  }
  /**
   * problems lists duplicates, regressions and holes: the demo writes no
   * transactions, so offsets of a partition are contiguous from its first.
   * from ({p: "o"}, optional) says where each partition must start.
   */
  problems(from = {}, upTo = {}) {
    const out = [];
    for (const [p, l] of this.byPartition) {
      const start = from[p] !== undefined ? BigInt(from[p]) : l[0];
      if (l[0] !== start) out.push(`p${p}: first offset ${l[0]}, want ${start}`);
      for (let i = 1; i < l.length; i++) {
        if (l[i] <= l[i - 1]) out.push(`p${p}: offset ${l[i]} after ${l[i - 1]} (duplicate or regression)`);
        else if (l[i] !== l[i - 1] + 1n) out.push(`p${p}: hole ${l[i - 1] + 1n}..${l[i] - 1n}`);
      }
      if (upTo[p] !== undefined && l[l.length - 1] !== BigInt(upTo[p])) out.push(`p${p}: last offset ${l[l.length - 1]}, head ${upTo[p]}`);
    }
    for (const p of Object.keys(upTo)) if (!this.byPartition.has(Number(p))) out.push(`p${p}: nothing received, head ${upTo[p]}`);
    return out.slice(0, 20);
  }
}
