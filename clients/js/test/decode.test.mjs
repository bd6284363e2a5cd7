// The decoder against the project's wire test vectors
// (testdata/dashstream/MANIFEST.json): every entry, valid and invalid, down
// to every decoded field.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { toJson } from "@bufbuild/protobuf";
import { ScalarType } from "@bufbuild/protobuf";
import { DashStreamMessageSchema, DecodeError, decodeRecord, threadPositions } from "../dist/index.js";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const DIR = path.join(REPO, "testdata/dashstream");
const manifest = JSON.parse(fs.readFileSync(path.join(DIR, "MANIFEST.json"), "utf8"));

// The manifest's error classes in the decoder's kinds (docs/PROTOCOL.md §2.6).
const KIND = { unknown_framing_or_invalid_protobuf: "invalid_protobuf", truncated_protobuf: "invalid_protobuf" };

const hex = (b64) => Buffer.from(b64, "base64").toString("hex");

// manifestShape turns protobuf-es's JSON (proto field names, enums as numbers)
// into the manifest's shape: bytes as hex, guided by the schema.
function manifestShape(desc, json) {
  const out = {};
  for (const f of desc.fields) {
    if (!(f.name in json)) continue;
    const v = json[f.name];
    const one = (kind, scalar, message, x) =>
      kind === "message" ? manifestShape(message, x) : kind === "scalar" && scalar === ScalarType.BYTES ? hex(x) : x;
    switch (f.fieldKind) {
      case "list":
        out[f.name] = v.map((x) => one(f.listKind, f.scalar, f.message, x));
        break;
      case "map":
        out[f.name] = Object.fromEntries(Object.entries(v).map(([k, x]) => [k, one(f.mapKind, f.scalar, f.message, x)]));
        break;
      default:
        out[f.name] = one(f.fieldKind, f.scalar, f.message, v);
    }
  }
  return out;
}

// sameShape compares the decoded message with the manifest's; a large bytes
// field is given there as {len, sha256} of its content.
function sameShape(got, want, where) {
  if (want && typeof want === "object" && !Array.isArray(want) && Object.keys(want).sort().join() === "len,sha256" && typeof got === "string") {
    const b = Buffer.from(got, "hex");
    assert.equal(b.length, want.len, where + ": length");
    assert.equal(createHash("sha256").update(b).digest("hex"), want.sha256, where + ": sha256");
    return;
  }
  if (Array.isArray(want)) {
    assert.ok(Array.isArray(got), where + ": not a list");
    assert.equal(got.length, want.length, where + ": list length");
    want.forEach((w, i) => sameShape(got[i], w, `${where}[${i}]`));
    return;
  }
  if (want && typeof want === "object") {
    assert.ok(got && typeof got === "object", where + ": not an object");
    assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort(), where + ": fields");
    for (const k of Object.keys(want)) sameShape(got[k], want[k], `${where}.${k}`);
    return;
  }
  assert.equal(got, want, where);
}

describe("decodeRecord on testdata/dashstream/MANIFEST.json", () => {
  assert.ok(manifest.length >= 37, "manifest has its entries");
  for (const v of manifest) {
    it(v.name, () => {
      let bytes;
      if (v.file) {
        bytes = fs.readFileSync(path.join(DIR, v.file));
      } else {
        const s = v.synthesize_spec;
        assert.ok(s, "synthesized vector has a spec");
        bytes = Buffer.alloc(s.total_size, Buffer.from(s.fill_byte_hex, "hex"));
        Buffer.from(s.prefix_hex, "hex").copy(bytes, 0);
      }
      if (v.sha256 && v.file) assert.equal(createHash("sha256").update(bytes).digest("hex"), v.sha256, "file matches the manifest");
      if (!v.valid) {
        assert.throws(() => decodeRecord(bytes), (err) => {
          assert.ok(err instanceof DecodeError, String(err));
          assert.equal(err.kind, KIND[v.error_class] ?? v.error_class, err.message);
          return true;
        });
        return;
      }
      const d = decodeRecord(bytes);
      assert.equal(d.framing, v.framing);
      assert.equal(d.type, v.message_type);
      if (v.header) {
        assert.ok(d.header, "has a header");
        assert.equal(Buffer.from(d.header.messageId).toString("hex"), v.header.message_id);
        assert.equal(d.header.timestampUs, BigInt(v.header.timestamp_us));
        assert.equal(d.header.tenantId, v.header.tenant_id);
        assert.equal(d.header.threadId, v.header.thread_id);
        assert.equal(d.header.sequence, BigInt(v.header.sequence));
        assert.equal(d.header.type, v.header.type);
        assert.equal(d.header.compression, v.header.compression);
        assert.equal(d.header.schemaVersion, v.header.schema_version);
      } else {
        assert.equal(d.header, undefined);
      }
      if (v.event_type) assert.equal(d.message.message.value.eventType, v.event_type.value);
      if (v.node_id !== undefined) assert.equal(d.message.message.value.nodeId, v.node_id);
      if (v.inner_events) {
        assert.deepEqual(
          threadPositions(d.message).map((p) => [p.threadId, p.sequence.toString(), p.timestampUs.toString()]),
          v.inner_events.map((e) => [e.thread_id, e.sequence, String(e.timestamp_us)]),
        );
        const max = {};
        for (const p of threadPositions(d.message)) if (!max[p.threadId] || BigInt(max[p.threadId]) < p.sequence) max[p.threadId] = p.sequence.toString();
        assert.deepEqual(max, v.max_sequence_by_thread);
      }
      const json = toJson(DashStreamMessageSchema, d.message, { useProtoFieldName: true, enumAsInteger: true });
      sameShape(manifestShape(DashStreamMessageSchema, json), v.decoded, "decoded");
    });
  }
});

describe("decodeRecord limits", () => {
  it("a payload cap applies after decompression", () => {
    const v = manifest.find((x) => x.name === "state_diff_full_state_large_zstd");
    const bytes = fs.readFileSync(path.join(DIR, v.file));
    assert.throws(() => decodeRecord(bytes, { maxPayloadBytes: 100_000 }), (e) => e.kind === "decompressed_too_large");
    assert.equal(decodeRecord(bytes, { maxPayloadBytes: v.protobuf_size }).type, "state_diff");
  });
  it("a zstd frame without a declared size is counted while it inflates", () => {
    // A hand-made frame without Frame_Content_Size: one RLE block that
    // inflates 1 byte to 60 000 (window descriptor 2^16).
    const n = 60_000;
    const frame = Buffer.alloc(4 + 1 + 1 + 3 + 1);
    Buffer.from([0x28, 0xb5, 0x2f, 0xfd]).copy(frame, 0);
    frame[4] = 0x00; // no FCS, not single segment, no checksum, no dictionary
    frame[5] = (16 - 10) << 3; // window 64 KiB
    const bh = (n << 3) | (1 << 1) | 1; // RLE block, last
    frame[6] = bh & 0xff;
    frame[7] = (bh >> 8) & 0xff;
    frame[8] = (bh >> 16) & 0xff;
    frame[9] = 0x0a; // 60 000 times 0x0a: nested empty events, a valid message
    const value = Buffer.concat([Buffer.from([0x01]), frame]);
    assert.throws(() => decodeRecord(value, { maxPayloadBytes: 59_999 }), (e) => e.kind === "decompressed_too_large" && /inflates beyond/.test(e.message));
    const d = decodeRecord(value, { maxPayloadBytes: 60_000 });
    assert.equal(d.framing, "zstd");
    assert.equal(d.type, "event");
  });
});
