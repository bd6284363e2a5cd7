// Decoding of DashStream record values (docs/PROTOCOL.md §2.2–§2.5): the
// framing byte, zstd frames with a size cap enforced while decompressing, and
// the protobuf DashStreamMessage.

import { fromBinary } from "@bufbuild/protobuf";
import { Decompress } from "fzstd";
import {
  DashStreamMessageSchema,
  type DashStreamMessage,
  type Event,
  type Header,
} from "./gen/dashstream/v1/dashstream_pb.js";

/** How a record value was framed (docs/PROTOCOL.md §2.2). */
export type Framing = "plain" | "zstd" | "legacy-raw" | "legacy-zstd";

/** The decode failure kinds of docs/PROTOCOL.md §2.6 that a value can have. */
export type DecodeErrorKind =
  | "empty_payload"
  | "payload_too_large"
  | "bad_zstd"
  | "decompressed_too_large"
  | "invalid_protobuf";

/** A record value that could not be decoded; `kind` says why. */
export class DecodeError extends Error {
  readonly kind: DecodeErrorKind;
  constructor(kind: DecodeErrorKind, message: string, options?: { cause?: unknown }) {
    super(`${kind}: ${message}`, options);
    this.name = "DecodeError";
    this.kind = kind;
  }
}

/**
 * The name of the message body as the protocol writes it (the oneof field
 * name, as in filters: `event`, `state_diff`, …), or "none" for an empty message.
 */
export type MessageType =
  | "event"
  | "state_diff"
  | "token_chunk"
  | "tool_execution"
  | "checkpoint"
  | "metrics"
  | "error"
  | "event_batch"
  | "execution_trace"
  | "none";

/** messageType returns the body's MessageType of a decoded message. */
export function messageType(message: DashStreamMessage): MessageType {
  const c = message.message.case;
  if (c === undefined) return "none";
  return c.replace(/[A-Z]/g, (ch) => "_" + ch.toLowerCase()) as MessageType;
}

/** A decoded record value. */
export interface DecodedRecord {
  framing: Framing;
  /** The typed message (protobuf-es shape: bigint for 64-bit integers). */
  message: DashStreamMessage;
  /** Which body is set. */
  type: MessageType;
  /** The body's header; undefined for an empty message or a body without one. */
  header: Header | undefined;
}

/** The gateway's default payload cap (MAX_PAYLOAD_BYTES): 10 MiB. */
export const DEFAULT_MAX_PAYLOAD = 10 << 20;

// zstd needs some window for any frame; tiny caps stay usable (the cap on the
// output is still enforced).
const MIN_WINDOW = 64 << 10;

export interface DecodeOptions {
  /** Cap on the payload after the framing byte and after decompression (bytes). */
  maxPayloadBytes?: number;
}

const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];

function hasZstdMagic(b: Uint8Array): boolean {
  return b.length >= 4 && b[0] === ZSTD_MAGIC[0] && b[1] === ZSTD_MAGIC[1] && b[2] === ZSTD_MAGIC[2] && b[3] === ZSTD_MAGIC[3];
}

/**
 * decodeRecord decodes one Kafka record value (a WebSocket binary frame in v1,
 * the value after the envelope in v2). It throws a DecodeError.
 */
export function decodeRecord(value: Uint8Array, options: DecodeOptions = {}): DecodedRecord {
  const cap = options.maxPayloadBytes && options.maxPayloadBytes > 0 ? options.maxPayloadBytes : DEFAULT_MAX_PAYLOAD;
  if (value.length === 0) throw new DecodeError("empty_payload", "zero-length record value");
  if (value.length > cap + 1) {
    throw new DecodeError("payload_too_large", `value is ${value.length} bytes, cap is ${cap} plus the framing byte`);
  }
  let framing: Framing;
  let payload: Uint8Array;
  if (value[0] === 0x00) {
    framing = "plain";
    payload = value.subarray(1);
  } else if (value[0] === 0x01) {
    framing = "zstd";
    payload = inflate(value.subarray(1), cap);
  } else if (hasZstdMagic(value)) {
    framing = "legacy-zstd";
    payload = inflate(value, cap);
  } else {
    framing = "legacy-raw";
    payload = value;
  }
  if (payload.length > cap) {
    throw new DecodeError("payload_too_large", `payload is ${payload.length} bytes, cap is ${cap}`);
  }
  let message: DashStreamMessage;
  try {
    message = fromBinary(DashStreamMessageSchema, payload);
  } catch (err) {
    throw new DecodeError("invalid_protobuf", err instanceof Error ? err.message : String(err), { cause: err });
  }
  const type = messageType(message);
  const header = message.message.case === undefined ? undefined : message.message.value.header;
  return { framing, message, type, header };
}

/** One (thread, sequence, timestamp) position a record carries (§2.5). */
export interface ThreadPosition {
  threadId: string;
  /** 0n means absent. */
  sequence: bigint;
  timestampUs: bigint;
}

/**
 * threadPositions returns the header positions of a message: its body's header,
 * or for an EventBatch every inner event's header (a batch can span threads).
 */
export function threadPositions(message: DashStreamMessage): ThreadPosition[] {
  const m = message.message;
  if (m.case === undefined) return [];
  const headers: (Header | undefined)[] =
    m.case === "eventBatch" ? m.value.events.map((e: Event) => e.header) : [m.value.header];
  return headers
    .filter((h): h is Header => h !== undefined)
    .map((h) => ({ threadId: h.threadId, sequence: h.sequence, timestampUs: h.timestampUs }));
}

// ---- zstd -------------------------------------------------------------------

interface FrameHeader {
  contentSize: number | undefined; // declared Frame_Content_Size
  windowSize: number;
}

// readFrameHeader parses a zstd frame header (RFC 8878 §3.1.1.1).
function readFrameHeader(f: Uint8Array): FrameHeader {
  if (!hasZstdMagic(f)) throw new DecodeError("bad_zstd", "no zstd frame magic");
  if (f.length < 6) throw new DecodeError("bad_zstd", "truncated zstd frame header");
  const fhd = f[4]!;
  const fcsFlag = fhd >> 6;
  const single = (fhd >> 5) & 1;
  if (fhd & 0x08) throw new DecodeError("bad_zstd", "reserved bit set in the zstd frame header");
  const dictFlag = fhd & 3;
  let pos = 5;
  let windowSize = 0;
  if (!single) {
    const wd = f[pos++]!;
    const base = 2 ** (10 + (wd >> 3));
    windowSize = base + (base / 8) * (wd & 7);
  }
  pos += [0, 1, 2, 4][dictFlag]!;
  const fcsBytes = [single ? 1 : 0, 2, 4, 8][fcsFlag]!;
  if (f.length < pos + fcsBytes) throw new DecodeError("bad_zstd", "truncated zstd frame header");
  let contentSize: number | undefined;
  if (fcsBytes > 0) {
    let v = 0n;
    for (let i = fcsBytes - 1; i >= 0; i--) v = (v << 8n) | BigInt(f[pos + i]!);
    if (fcsBytes === 2) v += 256n;
    contentSize = v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
  }
  if (single) windowSize = contentSize ?? 0;
  return { contentSize, windowSize };
}

// inflate returns the content of exactly one zstd frame, never producing or
// allocating more than cap bytes of output: a frame that declares more is
// refused up front, one that declares nothing is counted while it inflates.
function inflate(frame: Uint8Array, cap: number): Uint8Array {
  const h = readFrameHeader(frame);
  if (h.contentSize !== undefined && h.contentSize > cap) {
    throw new DecodeError("decompressed_too_large", `zstd frame declares ${h.contentSize} bytes, cap is ${cap}`);
  }
  if (h.windowSize > Math.max(cap, MIN_WINDOW)) {
    throw new DecodeError("decompressed_too_large", `zstd window of ${h.windowSize} bytes exceeds the cap of ${cap}`);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  let over = false;
  const d = new Decompress((chunk: Uint8Array) => {
    total += chunk.length;
    if (total > cap) {
      over = true;
      throw new DecodeError("decompressed_too_large", `zstd frame inflates beyond the cap of ${cap} bytes`);
    }
    chunks.push(chunk);
  });
  try {
    d.push(frame, true);
  } catch (err) {
    if (over || err instanceof DecodeError) throw err;
    throw new DecodeError("bad_zstd", err instanceof Error ? err.message : String(err), { cause: err });
  }
  if (h.contentSize !== undefined && total !== h.contentSize) {
    throw new DecodeError("bad_zstd", `zstd frame declares ${h.contentSize} bytes but holds ${total}`);
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
