// The gateway's WebSocket frames (docs/PROTOCOL.md §3.1–§3.3 and §3.8):
// types of the JSON control frames and the parsing of the v2 record envelope.

/** The v2 subprotocol name (docs/PROTOCOL.md §3.8). */
export const SUBPROTOCOL_V2 = "dashstream.v2";

/** Byte 0 of a v2 binary record frame. */
export const V2_RECORD = 0x01;

/** Size of the v2 binary envelope: kind, partition (uint32 BE), offset (int64 BE). */
export const V2_HEADER_BYTES = 13;

/** Offsets per partition as the gateway writes them: decimal strings. */
export type OffsetMap = Record<string, string>;

/** Filter of a resume (docs/PROTOCOL.md §3.8): AND across fields, OR within one. */
export interface Filter {
  threads?: string[];
  thread_prefix?: string;
  /** Message type names: event, state_diff, token_chunk, … */
  types?: string[];
  /** EventType names, e.g. EVENT_TYPE_GRAPH_START. */
  event_types?: string[];
}

export interface ResumeFrame {
  type: "resume";
  from: "cursor" | "latest" | "earliest";
  lastOffsetsByPartition?: OffsetMap;
  namespace?: string;
  filter?: Filter;
  format?: "json" | "binary";
  join?: "checkpoint";
}

export interface CursorFrame {
  type: "cursor";
  partition: number;
  offset: string;
}
export interface ReplayCompleteFrame {
  type: "replay_complete";
  totalReplayed: number;
  lastOffsetsByPartition: OffsetMap;
  capped: boolean;
  mode: "cursor" | "latest" | "earliest" | "thread";
}
export interface GapFrame {
  type: "gap";
  partition: number;
  fromOffset: string;
  toOffset: string;
  count: number;
  severity: "info" | "warning" | "critical";
  reason: string;
  message?: string;
}
export interface SkippedFrame {
  type: "skipped";
  partition: number;
  offset: string;
  error_type: string;
}
export interface CursorStaleFrame {
  type: "cursor_stale";
  partition: number;
  requested: string;
  oldest: string;
  message?: string;
}
export interface DisconnectFrame {
  type: "disconnect";
  reason: string;
  lag_in_window?: number;
  cumulative_lag?: number;
  threshold?: number;
  window_secs?: number;
  message?: string;
}
export interface CursorResetCompleteFrame {
  type: "cursor_reset_complete";
  latestOffsetsByPartition: OffsetMap;
  bufferCleared: boolean;
  truncated: boolean;
  totalPartitions: number;
  message?: string;
}
export interface RefreshCompleteFrame {
  type: "refresh_complete";
  expiresAt?: string;
}
export interface ErrorFrame {
  type: "error";
  code: string;
  message: string;
  entries?: string[];
}
/** A v2 record in JSON format: `message` is protobuf's canonical JSON. */
export interface JsonRecordFrame {
  type: "record";
  partition: number;
  offset: string;
  message: unknown;
}

/** Every server → client text frame this client knows. */
export type ServerFrame =
  | CursorFrame
  | ReplayCompleteFrame
  | GapFrame
  | SkippedFrame
  | CursorStaleFrame
  | DisconnectFrame
  | CursorResetCompleteFrame
  | RefreshCompleteFrame
  | ErrorFrame
  | JsonRecordFrame
  | { type: "pong" };

/** A v2 binary record frame taken apart. */
export interface V2BinaryRecord {
  partition: number;
  offset: string;
  value: Uint8Array;
}

/** A frame that breaks the protocol (the client reconnects). */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

/** parseV2Binary takes apart a v2 binary record frame (docs/PROTOCOL.md §3.8). */
export function parseV2Binary(frame: Uint8Array): V2BinaryRecord {
  if (frame.length < V2_HEADER_BYTES) {
    throw new ProtocolError(`v2 binary frame of ${frame.length} bytes is shorter than its ${V2_HEADER_BYTES}-byte envelope`);
  }
  if (frame[0] !== V2_RECORD) throw new ProtocolError(`v2 binary frame of unknown kind 0x${frame[0]!.toString(16).padStart(2, "0")}`);
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const partition = view.getUint32(1, false);
  const offset = view.getBigInt64(5, false);
  if (offset < 0n) throw new ProtocolError(`v2 binary frame with negative offset ${offset}`);
  return { partition, offset: offset.toString(), value: frame.subarray(V2_HEADER_BYTES) };
}

/** encodeV2Binary builds a v2 binary record frame (tests, proxies). */
export function encodeV2Binary(partition: number, offset: bigint | string | number, value: Uint8Array): Uint8Array {
  const out = new Uint8Array(V2_HEADER_BYTES + value.length);
  const view = new DataView(out.buffer);
  out[0] = V2_RECORD;
  view.setUint32(1, partition, false);
  view.setBigInt64(5, BigInt(offset), false);
  out.set(value, V2_HEADER_BYTES);
  return out;
}

const DECIMAL = /^(0|-?[1-9][0-9]*)$/;
const INT64_MAX = (1n << 63n) - 1n;

/** parseOffset reads an offset written as a JSON string or integer; undefined when invalid. */
export function parseOffset(v: unknown): bigint | undefined {
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v)) return undefined;
    v = String(v);
  }
  if (typeof v !== "string" || !DECIMAL.test(v)) return undefined;
  const n = BigInt(v);
  if (n < -1n || n > INT64_MAX) return undefined;
  return n;
}

/** parseServerFrame parses a text frame into a typed frame (unknown types are returned as they are). */
export function parseServerFrame(text: string): ServerFrame | { type: string; [k: string]: unknown } {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new ProtocolError("text frame is not JSON");
  }
  if (v === null || typeof v !== "object" || Array.isArray(v) || typeof (v as { type?: unknown }).type !== "string") {
    throw new ProtocolError("text frame is not a JSON object with a type");
  }
  return v as ServerFrame;
}
