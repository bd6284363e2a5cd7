// DashStream record values, decoded just enough for a live view: the framing
// byte, the message type (the oneof of DashStreamMessage), the header's
// thread_id / sequence / timestamp_us, and a one-line summary of the body.
// zstd-framed values (0x01 and legacy raw zstd) are not decompressed.
//
// A classic script without dependencies: it defines globalThis.DashStreamDecode
// (the UI loads it before app.js; the e2e test runs it in Node against the
// test vectors in testdata/dashstream). Sequences and timestamps are 64-bit,
// so they are read as BigInt and returned as decimal strings.
"use strict";
(function (root) {
  const TYPES = { 1: "event", 2: "state_diff", 3: "token_chunk", 4: "tool_execution", 5: "checkpoint",
    6: "metrics", 7: "error", 8: "event_batch", 9: "execution_trace" };
  const EVENT_TYPES = { 0: "UNSPECIFIED", 1: "GRAPH_START", 2: "GRAPH_END", 3: "GRAPH_ERROR",
    10: "NODE_START", 11: "NODE_END", 12: "NODE_ERROR", 20: "EDGE_TRAVERSAL", 21: "CONDITIONAL_BRANCH",
    22: "PARALLEL_START", 23: "PARALLEL_END", 30: "LLM_START", 31: "LLM_END", 32: "LLM_ERROR", 33: "LLM_RETRY",
    40: "TOOL_START", 41: "TOOL_END", 42: "TOOL_ERROR", 50: "CHECKPOINT_SAVE", 51: "CHECKPOINT_LOAD",
    52: "CHECKPOINT_DELETE", 60: "MEMORY_SAVE", 61: "MEMORY_LOAD", 70: "HUMAN_INTERRUPT", 71: "HUMAN_RESUME",
    80: "NODE_PROGRESS", 81: "NODE_THINKING", 82: "NODE_SUBSTEP", 83: "NODE_WARNING",
    90: "OPTIMIZATION_START", 91: "OPTIMIZATION_END" };
  const TOOL_STAGES = { 0: "UNSPECIFIED", 1: "REQUESTED", 2: "STARTED", 3: "COMPLETED", 4: "FAILED", 5: "RETRYING" };
  const SEVERITIES = { 0: "UNSPECIFIED", 1: "DEBUG", 2: "INFO", 3: "WARNING", 4: "ERROR", 5: "FATAL" };
  const FINISH = { 0: "", 1: "STOP", 2: "LENGTH", 3: "CONTENT_FILTER", 4: "TOOL_CALLS", 5: "ERROR" };
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  const MAX_TEXT = 120; // summaries are one line

  class DecodeError extends Error {}

  // Reader walks the protobuf wire format of one message (b[pos:end]).
  class Reader {
    constructor(b, pos, end) { this.b = b; this.pos = pos; this.end = end; }
    done() { return this.pos >= this.end; }
    // varint returns a Number: exact up to 2^53, enough for tags, lengths
    // and enums. bigVarint is exact for all 64 bits.
    varint() {
      let v = 0, mul = 1;
      for (let i = 0; i < 10; i++) {
        if (this.pos >= this.end) throw new DecodeError("truncated varint");
        const c = this.b[this.pos++];
        v += (c & 0x7f) * mul;
        if ((c & 0x80) === 0) return v;
        mul *= 128;
      }
      throw new DecodeError("varint longer than 10 bytes");
    }
    bigVarint() {
      let v = 0n, shift = 0n;
      for (let i = 0; i < 10; i++) {
        if (this.pos >= this.end) throw new DecodeError("truncated varint");
        const c = this.b[this.pos++];
        v |= BigInt(c & 0x7f) << shift;
        if ((c & 0x80) === 0) return BigInt.asUintN(64, v);
        shift += 7n;
      }
      throw new DecodeError("varint longer than 10 bytes");
    }
    // tag returns [field number, wire type], or null at the end.
    tag() {
      if (this.done()) return null;
      const t = this.varint();
      const field = Math.floor(t / 8), wire = t % 8;
      if (field < 1 || field > 536870911) throw new DecodeError("invalid field number " + field);
      return [field, wire];
    }
    // bytes returns [start, end) of a length-delimited field.
    bytes() {
      const n = this.varint();
      if (n > this.end - this.pos) throw new DecodeError("truncated length-delimited field");
      const start = this.pos;
      this.pos += n;
      return [start, this.pos];
    }
    sub() { const [s, e] = this.bytes(); return new Reader(this.b, s, e); }
    string() {
      const [s, e] = this.bytes();
      try { return utf8.decode(this.b.subarray(s, e)); } catch (_) { throw new DecodeError("invalid UTF-8 in string"); }
    }
    skip(wire) {
      switch (wire) {
        case 0: this.varint(); return;
        case 1: this.advance(8); return;
        case 2: this.bytes(); return;
        case 5: this.advance(4); return;
        default: throw new DecodeError("unsupported wire type " + wire);
      }
    }
    advance(n) {
      if (n > this.end - this.pos) throw new DecodeError("truncated fixed-size field");
      this.pos += n;
    }
  }

  // fields calls fn(field, wire, reader) for each field; fn returns true when
  // it consumed the value, else the value is skipped.
  function fields(r, fn) {
    for (let t = r.tag(); t; t = r.tag()) {
      if (!fn(t[0], t[1], r)) r.skip(t[1]);
    }
  }

  function expect(wire, want) {
    if (wire !== want) throw new DecodeError("wrong wire type " + wire + " (want " + want + ")");
  }

  function header(r) {
    const h = { thread: "", seq: "0", tsUs: "0", tenant: "", type: 0 };
    fields(r, (f, w, x) => {
      switch (f) {
        case 2: expect(w, 0); h.tsUs = BigInt.asIntN(64, x.bigVarint()).toString(); return true;
        case 3: expect(w, 2); h.tenant = x.string(); return true;
        case 4: expect(w, 2); h.thread = x.string(); return true;
        case 5: expect(w, 0); h.seq = x.bigVarint().toString(); return true;
        case 6: expect(w, 0); h.type = x.varint(); return true;
        default: return false;
      }
    });
    return h;
  }

  function clip(s) {
    s = s.replace(/\s+/g, " ").trim();
    return s.length > MAX_TEXT ? s.slice(0, MAX_TEXT - 1) + "…" : s;
  }

  function enumName(table, v) { return table[v] || String(v); }

  // body reads one message body; every body has Header header = 1. The
  // other fields read are those a one-line summary needs.
  function body(type, r) {
    const m = { header: null, detail: "", inner: null, eventType: null };
    const parts = {};
    const inner = [];
    fields(r, (f, w, x) => {
      if (f === 1) { expect(w, 2); m.header = header(x.sub()); return true; }
      switch (type) {
        case 1: // Event: 2 event_type, 3 node_id, 5 duration_us
          if (f === 2) { expect(w, 0); parts.eventType = x.varint(); return true; }
          if (f === 3) { expect(w, 2); parts.node = x.string(); return true; }
          if (f === 5) { expect(w, 0); parts.durationUs = BigInt.asIntN(64, x.bigVarint()); return true; }
          return false;
        case 2: // StateDiff: 3 repeated operations, 5 full_state
          if (f === 3) { expect(w, 2); x.bytes(); parts.ops = (parts.ops || 0) + 1; return true; }
          if (f === 5) { expect(w, 2); const [s, e] = x.bytes(); parts.fullState = e - s; return true; }
          return false;
        case 3: // TokenChunk: 3 text, 6 chunk_index, 7 is_final, 8 finish_reason, 9 model
          if (f === 3) { expect(w, 2); parts.text = x.string(); return true; }
          if (f === 6) { expect(w, 0); parts.chunk = x.varint(); return true; }
          if (f === 7) { expect(w, 0); parts.final = x.varint() !== 0; return true; }
          if (f === 8) { expect(w, 0); parts.finish = x.varint(); return true; }
          if (f === 9) { expect(w, 2); parts.model = x.string(); return true; }
          return false;
        case 4: // ToolExecution: 3 tool_name, 4 stage, 7 error
          if (f === 3) { expect(w, 2); parts.tool = x.string(); return true; }
          if (f === 4) { expect(w, 0); parts.stage = x.varint(); return true; }
          if (f === 7) { expect(w, 2); parts.error = x.string(); return true; }
          return false;
        case 5: // Checkpoint: 4 state_type, 6 storage_uri
          if (f === 4) { expect(w, 2); parts.stateType = x.string(); return true; }
          return false;
        case 6: // Metrics: 2 scope, 3 scope_id, 4 map entries
          if (f === 2) { expect(w, 2); parts.scope = x.string(); return true; }
          if (f === 3) { expect(w, 2); parts.scopeId = x.string(); return true; }
          if (f === 4) { expect(w, 2); x.bytes(); parts.metrics = (parts.metrics || 0) + 1; return true; }
          return false;
        case 7: // Error: 2 error_code, 3 message, 6 severity
          if (f === 2) { expect(w, 2); parts.code = x.string(); return true; }
          if (f === 3) { expect(w, 2); parts.message = x.string(); return true; }
          if (f === 6) { expect(w, 0); parts.severity = x.varint(); return true; }
          return false;
        case 8: // EventBatch: 2 repeated Event
          if (f === 2) {
            expect(w, 2);
            const ev = body(1, x.sub());
            const h = ev.header || { thread: "", seq: "0" };
            inner.push({ thread: h.thread, seq: h.seq, eventType: ev.eventType });
            return true;
          }
          return false;
        case 9: // ExecutionTrace: 4 repeated nodes_executed, 5 total_duration_ms, 8 completed
          if (f === 4) { expect(w, 2); x.bytes(); parts.nodes = (parts.nodes || 0) + 1; return true; }
          if (f === 5) { expect(w, 0); parts.totalMs = x.bigVarint(); return true; }
          if (f === 8) { expect(w, 0); parts.completed = x.varint() !== 0; return true; }
          return false;
        default:
          return false;
      }
    });
    switch (type) {
      case 1:
        m.eventType = parts.eventType || 0;
        m.detail = enumName(EVENT_TYPES, m.eventType) + (parts.node ? " " + parts.node : "") +
          (parts.durationUs ? " (" + fmtDuration(parts.durationUs) + ")" : "");
        break;
      case 2:
        m.detail = parts.fullState !== undefined ? "full state, " + parts.fullState + " bytes" : (parts.ops || 0) + " ops";
        break;
      case 3:
        m.detail = "chunk " + (parts.chunk || 0) + (parts.final ? " final" : "") +
          (parts.finish ? " " + enumName(FINISH, parts.finish) : "") + (parts.model ? " · " + parts.model : "") +
          (parts.text ? " · " + JSON.stringify(clip(parts.text)) : "");
        break;
      case 4:
        m.detail = (parts.tool || "?") + " " + enumName(TOOL_STAGES, parts.stage || 0) + (parts.error ? ": " + parts.error : "");
        break;
      case 5:
        m.detail = parts.stateType || "";
        break;
      case 6:
        m.detail = (parts.scope || "") + (parts.scopeId ? " " + parts.scopeId : "") + " · " + (parts.metrics || 0) + " metrics";
        break;
      case 7:
        m.detail = enumName(SEVERITIES, parts.severity || 0) + " " + (parts.code || "") + (parts.message ? ": " + parts.message : "");
        break;
      case 8: {
        m.inner = inner;
        const threads = [...new Set(inner.map((e) => e.thread))];
        m.detail = inner.length + " events" + (inner.length ? ": " + inner.map((e) => enumName(EVENT_TYPES, e.eventType || 0)).join(", ") : "") +
          (threads.length > 1 ? " · " + threads.length + " threads" : "");
        break;
      }
      case 9:
        m.detail = (parts.nodes || 0) + " nodes" + (parts.totalMs !== undefined ? " · " + parts.totalMs + " ms" : "") +
          (parts.completed ? " · completed" : "");
        break;
    }
    m.detail = clip(m.detail);
    return m;
  }

  function fmtDuration(us) {
    if (us < 1000n) return us + " µs";
    if (us < 1000000n) return (Number(us) / 1000).toFixed(1) + " ms";
    return (Number(us) / 1e6).toFixed(2) + " s";
  }

  // message decodes a DashStreamMessage (b[pos:]).
  function message(b, pos) {
    const r = new Reader(b, pos, b.length);
    let type = 0, m = null;
    fields(r, (f, w, x) => {
      if (f >= 1 && f <= 9) { expect(w, 2); type = f; m = body(f, x.sub()); return true; }
      return false;
    });
    const h = (m && m.header) || { thread: "", seq: "0", tsUs: "0", tenant: "", type: 0 };
    const out = { type: TYPES[type] || "none", thread: h.thread, seq: h.seq, tsUs: h.tsUs, tenant: h.tenant,
      detail: m ? m.detail : "", eventType: m ? m.eventType : null, inner: m ? m.inner : null };
    // The threads this record touches: a batch can span several.
    out.threads = out.inner ? [...new Set(out.inner.map((e) => e.thread).filter(Boolean))] : (h.thread ? [h.thread] : []);
    return out;
  }

  // decode never throws: an undecodable value comes back with
  // framing "invalid" and the reason in error.
  function decode(bytes) {
    const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
    const base = { framing: "", type: "", thread: "", seq: "0", tsUs: "0", tenant: "", detail: "",
      eventType: null, inner: null, threads: [], error: "" };
    if (b.length === 0) return Object.assign(base, { framing: "invalid", error: "empty value" });
    let framing = "plain", start = 1;
    if (b[0] === 0x01) return Object.assign(base, { framing: "zstd", detail: "zstd compressed (not decoded)" });
    if (b[0] !== 0x00) {
      if (b.length >= 4 && b[0] === 0x28 && b[1] === 0xb5 && b[2] === 0x2f && b[3] === 0xfd) {
        return Object.assign(base, { framing: "legacy-zstd", detail: "zstd compressed (not decoded)" });
      }
      framing = "legacy-raw";
      start = 0;
    }
    try {
      return Object.assign(base, message(b, start), { framing });
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      return Object.assign(base, { framing: "invalid", error: e.message });
    }
  }

  root.DashStreamDecode = { decode, TYPES, EVENT_TYPES };
})(globalThis);
