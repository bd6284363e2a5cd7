// DashStreamClient: a resuming WebSocket client of the DashStream gateway. It
// follows docs/PROTOCOL.md §3.10 ("Writing a resuming client"): it keeps the
// last applied offset per partition, persists it only after the record was
// applied, resumes from it after every disconnect (jittered exponential
// backoff) and drops what it already applied, so that an application sees
// every record exactly once, in order per partition.

import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { DashStreamMessageSchema, type DashStreamMessage, type Header } from "./gen/dashstream/v1/dashstream_pb.js";
import { decodeRecord, messageType, type Framing, type MessageType } from "./decode.js";
import {
  ProtocolError,
  SUBPROTOCOL_V2,
  parseOffset,
  parseServerFrame,
  parseV2Binary,
  type CursorResetCompleteFrame,
  type CursorStaleFrame,
  type DisconnectFrame,
  type ErrorFrame,
  type Filter,
  type GapFrame,
  type OffsetMap,
  type RefreshCompleteFrame,
  type ReplayCompleteFrame,
  type ResumeFrame,
  type SkippedFrame,
} from "./protocol.js";
import { MemoryCursorStore, type CursorStore } from "./store.js";

/** The WHATWG WebSocket surface the client uses (browsers, Node 22+, the `ws` package). */
export interface WebSocketLike {
  readonly protocol: string;
  readonly readyState: number;
  binaryType: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  /** `ws` only: stop and restart reading the socket. */
  pause?(): void;
  resume?(): void;
}

/** A WebSocket constructor: globalThis.WebSocket, or `ws`'s (which takes options with headers). */
export type WebSocketConstructor = new (
  url: string,
  protocols?: string | string[],
  options?: { headers?: Record<string, string> },
) => WebSocketLike;

/** A token, or a function that returns a fresh one (called at every connect and refresh). */
export type TokenSource = string | (() => string | Promise<string>);

export interface ClientOptions {
  /** The gateway's WebSocket URL, e.g. ws://127.0.0.1:3002/ws. */
  url: string;
  /** Protocol version: 1 (cursor + binary frames, the default) or 2 (subprotocol dashstream.v2). */
  protocol?: 1 | 2;
  /** v2 only: "json" asks for records as JSON text frames (decoded by the gateway). */
  format?: "binary" | "json";
  /** Where to start when there is no cursor yet (default "latest"). */
  from?: "latest" | "earliest";
  /** Only records matching this filter are delivered (docs/PROTOCOL.md §3.8). */
  filter?: Filter;
  /** "checkpoint": a first start from latest replays each active thread from its last full state. */
  join?: "checkpoint";
  /** Credentials (docs/PROTOCOL.md §3.0). */
  token?: TokenSource;
  /**
   * How the token travels: "header" (Authorization: Bearer, Node with `ws`), "subprotocol"
   * (browsers) or "query". Default: "header" when options.WebSocket is given in Node, else
   * "subprotocol".
   */
  tokenTransport?: "header" | "subprotocol" | "query";
  /** Send `refresh` this long before a JWT token's exp (ms, default 60 000); needs a token function. */
  refreshMarginMs?: number;
  /** WebSocket implementation; default globalThis.WebSocket (Node 20 has none: pass `ws`). */
  WebSocket?: WebSocketConstructor;
  /** fetch implementation for /version; default globalThis.fetch. */
  fetch?: typeof fetch;
  /** URL of /version (resume_namespace); default derived from url; null: never ask. */
  versionUrl?: string | null;
  /** Where cursors are kept (default: memory). */
  store?: CursorStore;
  /** Name of this subscription in the store (default "default"). */
  name?: string;
  /** Decode binary records into typed messages (default true). */
  decode?: boolean;
  /** Payload cap of the decoder (default 10 MiB, the gateway's). */
  maxPayloadBytes?: number;
  /** Reconnect backoff: initial and max delay (ms) and relative jitter (default 250, 10 000, 0.2). */
  backoff?: { initialMs?: number; maxMs?: number; jitter?: number };
  /**
   * Frames received but not applied yet, above which the client stops reading
   * the socket until half of them are applied (default 10 000). Only where the
   * WebSocket can pause (the `ws` package): the gateway then treats the client
   * as slow and lets it catch up (docs/PROTOCOL.md §3.6). Browsers queue.
   */
  maxQueuedFrames?: number;
  /** Application-level ping interval in ms (default 25 000; 0: none); no answer within pongTimeoutMs closes. */
  pingIntervalMs?: number;
  pongTimeoutMs?: number;
}

/** One record, applied by the handler of "record". */
export interface StreamRecord {
  partition: number;
  /** Kafka offset, decimal string (int64-exact). */
  offset: string;
  /** The Kafka record value, byte for byte (binary frames). */
  value?: Uint8Array;
  /** v2 JSON format: the message as the gateway sent it (protobuf canonical JSON). */
  json?: unknown;
  /** The typed message (unless decode is off or decoding failed). */
  message?: DashStreamMessage;
  framing?: Framing;
  type?: MessageType;
  header?: Header;
  /** Set when the value could not be decoded (the record is still delivered). */
  decodeError?: Error;
}

export type ClientState = "idle" | "connecting" | "open" | "closed" | "stopped";

export interface ReconnectInfo {
  code: number;
  reason: string;
  delayMs: number;
  attempt: number;
}

/** Events and their payloads. The "record" handler may return a promise: the record counts as applied when it resolves. */
export interface ClientEvents {
  record: StreamRecord;
  replay_complete: ReplayCompleteFrame;
  gap: GapFrame;
  skipped: SkippedFrame;
  cursor_stale: CursorStaleFrame;
  disconnect: DisconnectFrame;
  cursor_reset_complete: CursorResetCompleteFrame;
  refresh_complete: RefreshCompleteFrame;
  /** A server `error` frame. */
  server_error: ErrorFrame;
  /** Transport, protocol or handler errors (the client reconnects) and fatal refusals. */
  error: Error;
  reconnect: ReconnectInfo;
  state: ClientState;
}

type Handler<T> = (payload: T) => void | Promise<void>;

type Item =
  | { kind: "record"; conn: Conn; rec: StreamRecord }
  | { kind: "frame"; conn: Conn; frame: { type: string; [k: string]: unknown } };

interface Conn {
  ws: WebSocketLike;
  dead: boolean; // frames after a protocol or handler error are ignored
  paused: boolean; // reading stopped while the queue is full
  pending: { partition: number; offset: string } | null; // v1: the cursor awaiting its binary frame
  lastFrameAt: number;
  closed: Promise<{ code: number; reason: string }>;
  opened: Promise<void>;
  status?: number; // HTTP status of a refused handshake, when the implementation tells
  error?: string; // the transport's error message, when it gives one
}

const NODE = typeof (globalThis as { process?: { versions?: { node?: unknown } } }).process?.versions?.node === "string";

/** Options after defaults. */
type Resolved = Required<
  Pick<ClientOptions, "protocol" | "format" | "from" | "decode" | "name" | "refreshMarginMs" | "pingIntervalMs" | "pongTimeoutMs" | "maxQueuedFrames">
> &
  ClientOptions;

export class DashStreamClient {
  private readonly o: Resolved;
  private readonly WS: WebSocketConstructor;
  private readonly store: CursorStore;
  private readonly handlers = new Map<keyof ClientEvents, Set<Handler<never>>>();
  private readonly backoffInit: number;
  private readonly backoffMax: number;
  private readonly jitter: number;

  private last = new Map<number, bigint>();
  private namespace = "";
  private loaded = false;
  private backoff: number;
  private attempt = 0;
  private stopped = false;
  private started = false;
  private conn: Conn | null = null;
  private queue: Item[] = [];
  private draining: Promise<void> | null = null;
  private runLoop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private stateValue: ClientState = "idle";
  private fatal: Error | null = null;

  constructor(options: ClientOptions) {
    const WS = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WS) throw new Error("DashStreamClient: no WebSocket implementation: pass options.WebSocket (e.g. the ws package)");
    if (options.protocol !== undefined && options.protocol !== 1 && options.protocol !== 2) throw new Error("DashStreamClient: protocol must be 1 or 2");
    if (options.format === "json" && options.protocol !== 2) throw new Error("DashStreamClient: format json needs protocol 2");
    this.WS = WS;
    this.o = {
      protocol: 1,
      format: "binary",
      from: "latest",
      decode: true,
      name: "default",
      refreshMarginMs: 60_000,
      pingIntervalMs: 25_000,
      pongTimeoutMs: 10_000,
      maxQueuedFrames: 10_000,
      ...options,
    };
    this.store = options.store ?? new MemoryCursorStore();
    this.backoffInit = options.backoff?.initialMs ?? 250;
    this.backoffMax = options.backoff?.maxMs ?? 10_000;
    this.jitter = options.backoff?.jitter ?? 0.2;
    this.backoff = this.backoffInit;
  }

  // ---- public API ---------------------------------------------------------

  /** on registers a handler; it returns a function that removes it. */
  on<K extends keyof ClientEvents>(event: K, handler: Handler<ClientEvents[K]>): () => void {
    let set = this.handlers.get(event);
    if (!set) this.handlers.set(event, (set = new Set()));
    set.add(handler as Handler<never>);
    return () => set.delete(handler as Handler<never>);
  }

  /** start connects and keeps the stream going until close(). */
  start(): this {
    if (this.started) return this;
    this.started = true;
    this.runLoop = this.run();
    return this;
  }

  /** close stops the client: the socket is closed and no reconnect follows. It resolves when the loop has ended. */
  async close(): Promise<void> {
    this.stopped = true;
    this.queue = [];
    if (this.conn) this.closeConn(this.conn, 1000, "client closed");
    this.wake?.();
    await this.runLoop;
    await this.draining;
    this.setState("stopped");
  }

  /** The state of the connection. */
  get state(): ClientState {
    return this.stateValue;
  }

  /** The cursor: the last applied offset per partition (decimal strings), and its resume_namespace. */
  cursor(): { namespace: string; offsets: OffsetMap } {
    return { namespace: this.namespace, offsets: this.offsetMap() };
  }

  /** refreshToken sends `refresh` with a new token (or the token function's next one). */
  async refreshToken(token?: string): Promise<void> {
    const t = token ?? (await this.token());
    if (!t) throw new Error("refreshToken: no token");
    this.sendFrame({ type: "refresh", token: t });
    this.scheduleRefresh(t);
  }

  /** cursorReset asks the gateway to continue from now (docs/PROTOCOL.md §3.5). */
  cursorReset(): void {
    this.sendFrame({ type: "cursor_reset" });
  }

  /**
   * records returns the stream as an async iterator. A record counts as
   * applied (and the cursor moves past it) when the loop asks for the next
   * one, so breaking out of the loop leaves the current record unapplied.
   * The client is started if it is not; break or return closes it.
   */
  records(): AsyncIterableIterator<StreamRecord> {
    type Held = { rec: StreamRecord; applied: () => void; dropped: (e: Error) => void };
    let slot: Held | null = null; // received, not handed out yet
    let handed: Held | null = null; // handed out, applied on the next call of next()
    let waiter: { resolve: (r: IteratorResult<StreamRecord>) => void; reject: (e: unknown) => void } | null = null;
    let done = false;
    let failure: Error | null = null;
    const closed = new Error("records(): the iterator was closed");
    const off = this.on("record", (rec) =>
      new Promise<void>((applied, dropped) => {
        const held: Held = { rec, applied, dropped };
        if (done) return dropped(closed);
        if (waiter) {
          const w = waiter;
          waiter = null;
          handed = held;
          w.resolve({ value: rec, done: false });
        } else {
          slot = held;
        }
      }),
    );
    const offErr = this.on("error", (e) => {
      if (!this.fatal) return; // the client reconnects by itself
      failure = e;
      if (waiter) waiter.reject(e);
      waiter = null;
    });
    const finish = async (): Promise<IteratorResult<StreamRecord>> => {
      if (!done) {
        done = true;
        off();
        offErr();
        handed?.dropped(closed);
        slot?.dropped(closed);
        handed = slot = null;
        waiter?.resolve({ value: undefined, done: true });
        waiter = null;
        await this.close();
      }
      return { value: undefined, done: true };
    };
    const it: AsyncIterableIterator<StreamRecord> = {
      next: () => {
        if (handed) {
          handed.applied();
          handed = null;
        }
        if (failure) return Promise.reject(failure);
        if (done) return Promise.resolve({ value: undefined, done: true });
        this.start();
        if (slot) {
          handed = slot;
          slot = null;
          return Promise.resolve({ value: handed.rec, done: false });
        }
        return new Promise<IteratorResult<StreamRecord>>((resolve, reject) => {
          waiter = { resolve, reject };
        });
      },
      return: () => finish(),
      [Symbol.asyncIterator]() {
        return it;
      },
    };
    return it;
  }

  // ---- the connection loop -------------------------------------------------

  private async run(): Promise<void> {
    while (!this.stopped) {
      await this.idle(); // nothing of an old connection is still being applied
      if (this.stopped) break;
      let closeInfo: { code: number; reason: string };
      try {
        closeInfo = await this.connectOnce();
      } catch (err) {
        closeInfo = { code: 1006, reason: err instanceof Error ? err.message : String(err) };
        if (!this.stopped) this.emit("error", err instanceof Error ? err : new Error(String(err)));
      }
      this.stopTimers();
      this.conn = null;
      if (this.stopped) break;
      if (this.fatal) {
        this.stopped = true;
        break;
      }
      this.setState("closed");
      const delay = this.nextDelay(closeInfo.code);
      this.attempt++;
      this.emit("reconnect", { ...closeInfo, delayMs: delay, attempt: this.attempt });
      await this.sleep(delay);
    }
    this.stopTimers();
    this.setState("stopped");
  }

  private nextDelay(code: number): number {
    if (code === 1001 || code === 1012) {
      // shutdown or topic re-created: another instance (or this one) is ready soon
      return Math.floor(Math.random() * Math.min(this.backoffInit, 250));
    }
    const d = this.backoff * (1 - this.jitter + 2 * this.jitter * Math.random());
    this.backoff = Math.min(this.backoff * 2, this.backoffMax);
    return Math.max(0, Math.round(d));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        this.wake = null;
        resolve();
      };
    });
  }

  private async connectOnce(): Promise<{ code: number; reason: string }> {
    this.setState("connecting");
    const ns = await this.fetchNamespace();
    if (!this.loaded) {
      this.namespace = ns;
      this.last = toMap((await this.store.load(this.key(ns))) ?? {});
      this.loaded = true;
    }
    const token = await this.token();
    if (this.stopped) return { code: 1000, reason: "client closed" };
    const conn = this.open(token);
    this.conn = conn;
    const first = await Promise.race([conn.opened.then(() => null), conn.closed]);
    if (first) {
      if (conn.status === 401 || conn.status === 403) this.refused(conn.status);
      return first;
    }
    if (this.o.protocol === 2 && conn.ws.protocol !== SUBPROTOCOL_V2) {
      this.closeConn(conn, 1000, "no v2");
      this.emit("error", new Error(`the gateway did not select ${SUBPROTOCOL_V2} (selected: "${conn.ws.protocol}")`));
      return conn.closed;
    }
    this.setState("open");
    // The resume carries the namespace its offsets belong to: a gateway of
    // another namespace answers cursor_stale for each (docs/PROTOCOL.md §3.10).
    const resume: ResumeFrame = {
      type: "resume",
      from: this.last.size > 0 ? "cursor" : this.o.from,
      lastOffsetsByPartition: this.offsetMap(),
    };
    if (this.namespace) resume.namespace = this.namespace;
    if (this.o.filter) resume.filter = this.o.filter;
    if (this.o.protocol === 2 && this.o.format === "json") resume.format = "json";
    if (this.o.join && resume.from === "latest") resume.join = this.o.join;
    this.sendOn(conn, resume);
    if (ns && ns !== this.namespace) this.namespace = ns; // what this connection sends is of ns
    if (token) this.scheduleRefresh(token);
    this.startPing(conn);
    return conn.closed;
  }

  private refused(status: number): void {
    // 401/403 are permanent until something changes (docs/PROTOCOL.md §3.0):
    // a token function may bring a new token, so only 403 and 401 with a
    // fixed token stop the client.
    if (status === 403 || typeof this.o.token !== "function") {
      this.fatal = new Error(`the gateway refused the connection with HTTP ${status}`);
      this.emit("error", this.fatal);
    }
  }

  private open(token: string): Conn {
    const transport = this.o.tokenTransport ?? (NODE && this.o.WebSocket ? "header" : "subprotocol");
    const protocols: string[] = [];
    if (this.o.protocol === 2) protocols.push(SUBPROTOCOL_V2);
    let url = this.o.url;
    const init: { headers?: Record<string, string> } = {};
    if (token) {
      if (transport === "header") init.headers = { Authorization: `Bearer ${token}` };
      else if (transport === "subprotocol") protocols.push("bearer", token);
      else {
        const u = new URL(url);
        u.searchParams.set("token", token);
        url = u.toString();
      }
    }
    const ws = init.headers ? new this.WS(url, protocols, init) : protocols.length ? new this.WS(url, protocols) : new this.WS(url);
    ws.binaryType = "arraybuffer";
    let resolveOpen!: () => void;
    let resolveClosed!: (v: { code: number; reason: string }) => void;
    const conn: Conn = {
      ws,
      dead: false,
      paused: false,
      pending: null,
      lastFrameAt: Date.now(),
      opened: new Promise<void>((r) => (resolveOpen = r)),
      closed: new Promise((r) => (resolveClosed = r)),
    };
    ws.onopen = () => resolveOpen();
    ws.onerror = (ev: unknown) => {
      // `ws` reports a refused handshake as "Unexpected server response: 401".
      const msg = String((ev as { message?: unknown })?.message ?? (ev as { error?: { message?: unknown } })?.error?.message ?? "");
      const m = /Unexpected server response: (\d{3})/.exec(msg);
      if (m) conn.status = Number(m[1]);
      if (msg) conn.error = msg;
    };
    ws.onclose = (ev) => {
      conn.dead = true;
      resolveClosed({ code: ev.code, reason: ev.reason || conn.error || "" });
    };
    ws.onmessage = (ev) => this.onFrame(conn, ev.data);
    return conn;
  }

  private closeConn(conn: Conn, code: number, reason: string): void {
    conn.dead = true;
    try {
      conn.ws.close(code, reason);
    } catch {
      // already closing
    }
  }

  private sendOn(conn: Conn, frame: unknown): void {
    if (conn.dead || conn.ws.readyState !== 1) return;
    conn.ws.send(JSON.stringify(frame));
  }

  private sendFrame(frame: unknown): void {
    if (!this.conn) throw new Error("not connected");
    this.sendOn(this.conn, frame);
  }

  // ---- frames -----------------------------------------------------------------

  private protocolError(conn: Conn, message: string): void {
    if (conn.dead) return;
    this.emit("error", new ProtocolError(message));
    this.closeConn(conn, 4000, "protocol error");
  }

  private onFrame(conn: Conn, data: unknown): void {
    if (conn.dead) return;
    conn.lastFrameAt = Date.now();
    if (typeof data === "string") {
      let frame: { type: string; [k: string]: unknown };
      try {
        frame = parseServerFrame(data) as { type: string; [k: string]: unknown };
      } catch (err) {
        this.protocolError(conn, (err as Error).message);
        return;
      }
      if (conn.pending) {
        this.protocolError(conn, `a ${frame.type} frame came between a cursor and its record`);
        return;
      }
      if (frame.type === "pong") return;
      if (frame.type === "cursor" && this.o.protocol === 1) {
        const p = frame.partition, o = parseOffset(frame.offset);
        if (typeof p !== "number" || !Number.isInteger(p) || p < 0 || o === undefined || o < 0n) {
          this.protocolError(conn, `bad cursor frame ${data}`);
          return;
        }
        conn.pending = { partition: p, offset: o.toString() };
        return;
      }
      if (frame.type === "record" && this.o.protocol === 2) {
        const p = frame.partition, o = parseOffset(frame.offset);
        if (typeof p !== "number" || !Number.isInteger(p) || p < 0 || o === undefined || o < 0n) {
          this.protocolError(conn, "bad record frame");
          return;
        }
        this.push({ kind: "record", conn, rec: this.jsonRecord(p, o.toString(), frame.message) });
        return;
      }
      if (frame.type === "refresh_complete") {
        this.emit("refresh_complete", frame as unknown as RefreshCompleteFrame);
        return;
      }
      this.push({ kind: "frame", conn, frame });
      return;
    }
    const bytes = toBytes(data);
    if (!bytes) {
      this.protocolError(conn, "unsupported binary frame type (set binaryType to arraybuffer)");
      return;
    }
    if (this.o.protocol === 2) {
      try {
        const r = parseV2Binary(bytes);
        this.push({ kind: "record", conn, rec: this.binaryRecord(r.partition, r.offset, r.value) });
      } catch (err) {
        this.protocolError(conn, (err as Error).message);
      }
      return;
    }
    const pending = conn.pending;
    if (!pending) {
      this.protocolError(conn, "a binary frame without its cursor");
      return;
    }
    conn.pending = null;
    this.push({ kind: "record", conn, rec: this.binaryRecord(pending.partition, pending.offset, bytes) });
  }

  private binaryRecord(partition: number, offset: string, value: Uint8Array): StreamRecord {
    const rec: StreamRecord = { partition, offset, value };
    if (this.o.decode) {
      try {
        const d = decodeRecord(value, { maxPayloadBytes: this.o.maxPayloadBytes });
        rec.message = d.message;
        rec.framing = d.framing;
        rec.type = d.type;
        rec.header = d.header;
      } catch (err) {
        rec.decodeError = err as Error;
      }
    }
    return rec;
  }

  private jsonRecord(partition: number, offset: string, json: unknown): StreamRecord {
    const rec: StreamRecord = { partition, offset, json };
    if (this.o.decode) {
      try {
        const m = fromJson(DashStreamMessageSchema, json as JsonValue, { ignoreUnknownFields: true });
        rec.message = m;
        rec.type = messageType(m);
        rec.header = m.message.case === undefined ? undefined : m.message.value.header;
      } catch (err) {
        rec.decodeError = err as Error;
      }
    }
    return rec;
  }

  // ---- applying, in order -----------------------------------------------------

  private push(item: Item): void {
    this.queue.push(item);
    const c = item.conn;
    if (!c.paused && this.queue.length >= this.o.maxQueuedFrames && typeof c.ws.pause === "function") {
      c.paused = true;
      c.ws.pause();
    }
    if (!this.draining) this.draining = this.drain();
  }

  private resumeReading(): void {
    const c = this.conn;
    if (c?.paused && this.queue.length <= this.o.maxQueuedFrames / 2) {
      c.paused = false;
      c.ws.resume?.();
    }
  }

  private idle(): Promise<void> {
    return this.draining ?? Promise.resolve();
  }

  private async drain(): Promise<void> {
    try {
      for (let item = this.queue.shift(); item; item = this.queue.shift()) {
        try {
          await this.apply(item);
          this.resumeReading();
        } catch (err) {
          // A handler failed: the record is not applied. Drop what is queued
          // and reconnect; the resume brings it back.
          this.queue = [];
          if (!this.stopped) this.emit("error", err instanceof Error ? err : new Error(String(err)));
          this.closeConn(item.conn, 4001, "handler failed");
          break;
        }
      }
    } finally {
      this.draining = null;
      if (this.queue.length > 0 && !this.stopped) this.draining = this.drain();
    }
  }

  private async apply(item: Item): Promise<void> {
    if (item.kind === "record") {
      const { rec } = item;
      const o = BigInt(rec.offset);
      const prev = this.last.get(rec.partition);
      if (prev !== undefined && o <= prev) return; // already applied
      await this.emitAwait("record", rec);
      this.last.set(rec.partition, o);
      await this.persist();
      return;
    }
    const f = item.frame;
    switch (f.type) {
      case "skipped": {
        const o = parseOffset(f.offset);
        if (typeof f.partition === "number" && o !== undefined) this.advance(f.partition, o);
        await this.persist();
        this.emit("skipped", f as unknown as SkippedFrame);
        return;
      }
      case "gap": {
        const o = parseOffset(f.toOffset);
        if (typeof f.partition === "number" && o !== undefined) this.advance(f.partition, o);
        await this.persist();
        this.emit("gap", f as unknown as GapFrame);
        return;
      }
      case "cursor_stale":
        if (typeof f.partition === "number") this.last.delete(f.partition);
        await this.persist();
        this.emit("cursor_stale", f as unknown as CursorStaleFrame);
        return;
      case "replay_complete": {
        const m = (f.lastOffsetsByPartition ?? {}) as Record<string, unknown>;
        for (const [p, v] of Object.entries(m)) {
          const o = parseOffset(v);
          if (/^(0|[1-9][0-9]*)$/.test(p) && o !== undefined) this.advance(Number(p), o);
        }
        await this.persist();
        this.backoff = this.backoffInit; // the connection works
        this.attempt = 0;
        this.emit("replay_complete", f as unknown as ReplayCompleteFrame);
        return;
      }
      case "cursor_reset_complete": {
        const m = (f.latestOffsetsByPartition ?? {}) as Record<string, unknown>;
        this.last.clear();
        for (const [p, v] of Object.entries(m)) {
          const o = parseOffset(v);
          if (/^(0|[1-9][0-9]*)$/.test(p) && o !== undefined) this.last.set(Number(p), o);
        }
        await this.persist();
        this.emit("cursor_reset_complete", f as unknown as CursorResetCompleteFrame);
        return;
      }
      case "disconnect":
        this.emit("disconnect", f as unknown as DisconnectFrame);
        return;
      case "error":
        this.emit("server_error", f as unknown as ErrorFrame);
        return;
      default:
        return; // unknown frames are ignored (docs/PROTOCOL.md §3.3)
    }
  }

  private advance(partition: number, offset: bigint): void {
    const prev = this.last.get(partition);
    if (prev === undefined || offset > prev) this.last.set(partition, offset);
  }

  private async persist(): Promise<void> {
    await this.store.save(this.key(this.namespace), this.offsetMap());
  }

  private key(ns: string): string {
    return `${this.o.name}:${ns}`;
  }

  private offsetMap(): OffsetMap {
    const out: OffsetMap = {};
    for (const [p, o] of [...this.last.entries()].sort((a, b) => a[0] - b[0])) out[String(p)] = o.toString();
    return out;
  }

  // ---- namespace, token, timers ---------------------------------------------

  private async fetchNamespace(): Promise<string> {
    if (this.o.versionUrl === null) return "";
    const f = this.o.fetch ?? (globalThis as { fetch?: typeof fetch }).fetch;
    if (!f) return "";
    let url = this.o.versionUrl;
    if (url === undefined) {
      const u = new URL(this.o.url);
      u.protocol = u.protocol === "wss:" ? "https:" : "http:";
      u.pathname = u.pathname.replace(/\/ws\/?$/, "") + "/version";
      u.search = "";
      url = u.toString();
    }
    const ctl = new AbortController();
    const t = setTimeout(() => ctl.abort(), 3000);
    try {
      const res = await f(url, { signal: ctl.signal });
      if (!res.ok) return "";
      const v = (await res.json()) as { resume_namespace?: unknown };
      return typeof v.resume_namespace === "string" ? v.resume_namespace : "";
    } catch {
      return ""; // best effort (docs/PROTOCOL.md §3.10)
    } finally {
      clearTimeout(t);
    }
  }

  private async token(): Promise<string> {
    const t = this.o.token;
    if (t === undefined) return "";
    return typeof t === "function" ? await t() : t;
  }

  private scheduleRefresh(token: string): void {
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
    if (typeof this.o.token !== "function") return;
    const exp = jwtExp(token);
    if (exp === undefined) return;
    const delay = Math.max(1000, exp * 1000 - Date.now() - this.o.refreshMarginMs);
    this.refreshTimer = setTimeout(() => {
      this.refreshToken().catch((err: unknown) => this.emit("error", err instanceof Error ? err : new Error(String(err))));
    }, Math.min(delay, 2 ** 31 - 1));
  }

  private startPing(conn: Conn): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    if (!(this.o.pingIntervalMs > 0)) return;
    let pingAt = 0;
    this.pingTimer = setInterval(() => {
      if (conn.dead) return;
      const now = Date.now();
      if (conn.paused || this.queue.length > 0) {
        conn.lastFrameAt = now; // busy applying, not silent
        return;
      }
      if (pingAt && conn.lastFrameAt < pingAt && now - pingAt > this.o.pongTimeoutMs) {
        this.emit("error", new Error("no answer to ping: the connection is dead"));
        this.closeConn(conn, 4002, "ping timeout");
        return;
      }
      if (now - conn.lastFrameAt >= this.o.pingIntervalMs && (!pingAt || conn.lastFrameAt >= pingAt)) {
        pingAt = now;
        this.sendOn(conn, { type: "ping" });
      }
    }, Math.min(this.o.pingIntervalMs, this.o.pongTimeoutMs) / 2);
  }

  private stopTimers(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = undefined;
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
  }

  private setState(s: ClientState): void {
    if (this.stateValue === s) return;
    this.stateValue = s;
    this.emit("state", s);
  }

  private emit<K extends keyof ClientEvents>(event: K, payload: ClientEvents[K]): void {
    for (const h of this.handlers.get(event) ?? []) {
      try {
        const r = (h as Handler<ClientEvents[K]>)(payload);
        if (r && typeof (r as Promise<void>).catch === "function") (r as Promise<void>).catch(() => {});
      } catch {
        // an event handler's failure is its own
      }
    }
  }

  private async emitAwait<K extends keyof ClientEvents>(event: K, payload: ClientEvents[K]): Promise<void> {
    for (const h of this.handlers.get(event) ?? []) await (h as Handler<ClientEvents[K]>)(payload);
  }
}

function toMap(m: OffsetMap): Map<number, bigint> {
  const out = new Map<number, bigint>();
  for (const [p, v] of Object.entries(m)) {
    const o = parseOffset(v);
    if (/^(0|[1-9][0-9]*)$/.test(p) && o !== undefined && o >= 0n) out.set(Number(p), o);
  }
  return out;
}

function toBytes(data: unknown): Uint8Array | undefined {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return undefined;
}

/** jwtExp returns a JWT's exp claim (seconds), or undefined when the token is not a JWT with one. */
export function jwtExp(token: string): number | undefined {
  const parts = token.split(".");
  if (parts.length !== 3) return undefined;
  try {
    const b64 = parts[1]!.replace(/-/g, "+").replace(/_/g, "/");
    const json = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4)), (c) => c.charCodeAt(0)))) as { exp?: unknown };
    return typeof json.exp === "number" ? json.exp : undefined;
  } catch {
    return undefined;
  }
}
