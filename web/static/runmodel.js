// The model of one agent run (a thread) for the run view (run.html): built
// from the run's records in protobuf's canonical JSON mapping (v2 JSON
// records, docs/PROTOCOL.md §3.8, and the history of
// /api/threads/{thread_id}/records?format=json, §3.9).
//
// It keeps the graph (graph_schema_json of GRAPH_START) with each node's
// state, an event timeline, the token stream of each LLM call, tool calls
// with their arguments and results, and the run's current state: full
// states (GRAPH_START's initial_state_json, a Checkpoint, a StateDiff's
// full_state) and StateDiff operations applied as the devbroker applies
// them, with the state's SHA-256 over its canonical JSON (compact, keys
// sorted by UTF-8 bytes) checked against each StateDiff's state_hash.
//
// Everything but the state is keyed by the events' sequences, so records
// may be applied more than once and in any order (the history and the live
// socket overlap); the state must be fed in order from a full state on.
//
// A classic script without dependencies: it defines globalThis.DashStreamRun
// (run.html loads it before run.js; the e2e test runs it in Node).
"use strict";
(function (root) {
  const MAX_TIMELINE = 400, MAX_TEXT = 160, MAX_CALLS = 60;

  // ---- bytes ----------------------------------------------------------------

  function b64bytes(s) {
    const bin = atob(s || "");
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  const utf8 = new TextDecoder("utf-8");
  const enc = new TextEncoder();
  function b64text(s) { return utf8.decode(b64bytes(s)); }
  function hex(bytes) { let s = ""; for (const b of bytes) s += b.toString(16).padStart(2, "0"); return s; }

  // sha256 of bytes (FIPS 180-4), synchronous: crypto.subtle is async and
  // missing outside secure contexts (a gateway on plain http).
  const K = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2]);
  function sha256(data) {
    const n = data.length, total = ((n + 9 + 63) >> 6) << 6;
    const m = new Uint8Array(total);
    m.set(data);
    m[n] = 0x80;
    const dv = new DataView(m.buffer);
    dv.setUint32(total - 8, Math.floor(n / 0x20000000));
    dv.setUint32(total - 4, (n * 8) >>> 0);
    const h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
    const w = new Uint32Array(64);
    const rotr = (x, k) => (x >>> k) | (x << (32 - k));
    for (let off = 0; off < total; off += 64) {
      for (let i = 0; i < 16; i++) w[i] = dv.getUint32(off + 4 * i);
      for (let i = 16; i < 64; i++) {
        const a = w[i - 15], b = w[i - 2];
        w[i] = w[i - 16] + (rotr(a, 7) ^ rotr(a, 18) ^ (a >>> 3)) + w[i - 7] + (rotr(b, 17) ^ rotr(b, 19) ^ (b >>> 10));
      }
      let [a, b, c, d, e, f, g, hh] = h;
      for (let i = 0; i < 64; i++) {
        const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) >>> 0;
        const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
        hh = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
      }
      h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
    }
    const out = new Uint8Array(32), ov = new DataView(out.buffer);
    for (let i = 0; i < 8; i++) ov.setUint32(4 * i, h[i]);
    return out;
  }

  // ---- canonical JSON and JSON patch ------------------------------------------

  // compareUTF8 orders strings by their UTF-8 bytes (code point order),
  // which differs from JavaScript's UTF-16 order above the surrogates.
  function compareUTF8(a, b) {
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) {
      const x = a.codePointAt(i), y = b.codePointAt(i);
      if (x !== y) return x < y ? -1 : 1;
      if (x > 0xffff) i++;
    }
    return a.length - b.length;
  }

  // canonical is the input of state_hash: compact, object keys sorted
  // recursively, numbers and strings as JSON.stringify writes them.
  function canonical(v) {
    if (v === null || typeof v !== "object") return JSON.stringify(v === undefined ? null : v);
    if (Array.isArray(v)) return "[" + v.map(canonical).join(",") + "]";
    const keys = Object.keys(v).sort(compareUTF8);
    return "{" + keys.map((k) => JSON.stringify(k) + ":" + canonical(v[k])).join(",") + "}";
  }

  function stateHash(state) { return hex(sha256(enc.encode(canonical(state)))); }

  function pointer(p) {
    if (p === "") return [];
    if (p[0] !== "/") throw new Error("JSON pointer " + JSON.stringify(p) + " does not start with /");
    return p.slice(1).split("/").map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~"));
  }

  function index(a, key, insert) {
    if (!/^(0|[1-9][0-9]*)$/.test(key)) throw new Error("bad array index " + JSON.stringify(key));
    const i = Number(key);
    if (i > a.length || (i === a.length && !insert)) throw new Error("array index " + i + " out of range");
    return i;
  }

  function parentOf(doc, path) {
    let node = doc;
    for (const t of path.slice(0, -1)) {
      if (Array.isArray(node)) node = node[index(node, t, false)];
      else if (node !== null && typeof node === "object" && Object.hasOwn(node, t)) node = node[t];
      else throw new Error("path does not exist");
    }
    if (node === null || typeof node !== "object") throw new Error("parent is not a container");
    return node;
  }

  function getAt(doc, path) {
    if (!path.length) return doc;
    const parent = parentOf(doc, path), k = path[path.length - 1];
    if (Array.isArray(parent)) return parent[index(parent, k, false)];
    if (!Object.hasOwn(parent, k)) throw new Error("path does not exist");
    return parent[k];
  }

  function setAt(doc, path, value, add) {
    if (!path.length) return value;
    const parent = parentOf(doc, path), k = path[path.length - 1];
    if (Array.isArray(parent)) {
      if (add && k === "-") parent.push(value);
      else if (add) parent.splice(index(parent, k, true), 0, value);
      else parent[index(parent, k, false)] = value;
    } else {
      if (!add && !Object.hasOwn(parent, k)) throw new Error("path does not exist");
      parent[k] = value;
    }
    return doc;
  }

  function removeAt(doc, path) {
    if (!path.length) return null;
    const parent = parentOf(doc, path), k = path[path.length - 1];
    if (Array.isArray(parent)) parent.splice(index(parent, k, false), 1);
    else if (Object.hasOwn(parent, k)) delete parent[k];
    else throw new Error("path does not exist");
    return doc;
  }

  // applyOp applies one DiffOperation (canonical JSON: op and encoding by
  // name, value base64) to doc and returns the new document (RFC 6902).
  function applyOp(doc, op) {
    const enc = op.encoding || "VALUE_ENCODING_JSON";
    if (enc !== "VALUE_ENCODING_JSON") throw new Error("unsupported value encoding " + enc);
    const path = pointer(op.path || "");
    const value = () => JSON.parse(b64text(op.value));
    switch (op.op || "OP_TYPE_ADD") {
      case "OP_TYPE_ADD": return setAt(doc, path, value(), true);
      case "OP_TYPE_REPLACE": return setAt(doc, path, value(), false);
      case "OP_TYPE_REMOVE": return removeAt(doc, path);
      case "OP_TYPE_MOVE": {
        const from = pointer(op.from || ""), v = getAt(doc, from);
        return setAt(removeAt(doc, from), path, v, true);
      }
      case "OP_TYPE_COPY": return setAt(doc, path, structuredClone(getAt(doc, pointer(op.from || ""))), true);
      case "OP_TYPE_TEST":
        if (canonical(getAt(doc, path)) !== canonical(value())) throw new Error("test failed at " + op.path);
        return doc;
    }
    throw new Error("unsupported op " + op.op);
  }

  // ---- messages -------------------------------------------------------------------

  // attr turns an AttributeValue into a plain value (int64 stays a string).
  function attr(v) {
    if (!v || typeof v !== "object") return v;
    if ("stringValue" in v) return v.stringValue;
    if ("intValue" in v) return v.intValue;
    if ("floatValue" in v) return v.floatValue;
    if ("boolValue" in v) return v.boolValue;
    if ("bytesValue" in v) return v.bytesValue;
    if ("arrayValue" in v) return ((v.arrayValue && v.arrayValue.values) || []).map(attr);
    if ("mapValue" in v) return attrs((v.mapValue && v.mapValue.values) || {});
    return null;
  }
  function attrs(m) {
    const out = {};
    for (const [k, v] of Object.entries(m || {})) out[k] = attr(v);
    return out;
  }

  // body returns [kind, body] of a DashStreamMessage in canonical JSON.
  function body(msg) {
    for (const k of ["event", "stateDiff", "tokenChunk", "toolExecution", "checkpoint", "metrics", "error", "eventBatch", "executionTrace"]) {
      if (msg && msg[k]) return [k, msg[k]];
    }
    return ["none", {}];
  }

  function seqOf(b) { return Number((b.header && b.header.sequence) || 0); }
  function tsOf(b) { return Number(BigInt((b.header && b.header.timestampUs) || "0") / 1000n); }
  function short(s, n) { s = String(s).replace(/\s+/g, " ").trim(); return s.length > n ? s.slice(0, n - 1) + "…" : s; }
  function ename(e) { return String(e || "EVENT_TYPE_UNSPECIFIED").replace(/^EVENT_TYPE_/, ""); }
  function stage(s) { return String(s || "TOOL_STAGE_UNSPECIFIED").replace(/^TOOL_STAGE_/, ""); }
  function bytesText(s) {
    if (!s) return "";
    try { return b64text(s); } catch (_) { return "(" + s.length + " base64 chars)"; }
  }

  // ---- the model --------------------------------------------------------------------

  class RunModel {
    constructor(thread) {
      this.thread = thread;
      this.graph = null;        // parsed graph_schema_json
      this.graphName = "";
      this.status = "unknown";  // running, completed, failed (GRAPH_* events)
      this.nodes = {};          // name -> {status, seq, visits}
      this.timeline = [];       // {seq, ts, kind, node, text}, by sequence
      this.llm = {};            // request id -> {node, model, chunks{index: text}, final, finish, seq, tokens}
      this.tools = {};          // call id -> {tool, stage, stageSeq, args, result, error, seq, durationUs}
      this.llmNodes = {};       // request id -> node (LLM_START)
      this.state = null;        // current state, null until a full state
      this.stateSeq = 0;        // sequence of the record that made it
      this.stateFrom = "";      // what the last full state was
      this.hash = { checks: 0, mismatches: 0, last: null, lastDiff: null }; // {seq, expected, computed, match, what}
      this.stateErrors = [];
      this.seen = new Set();    // event sequences applied to the facets
      this.maxSeq = 0;
      this.records = 0;
    }

    // apply takes one record {message} (canonical JSON). With withState
    // it also advances the state: records must then come in order. With
    // stateOnly it does nothing else (the facets were applied before).
    apply(rec, withState, stateOnly) {
      const [kind, b] = body(rec.message);
      if (withState && !stateOnly) this.records++; // records that moved the state on, in order
      if (kind === "eventBatch") {
        for (const ev of b.events || []) {
          if ((ev.header && ev.header.threadId) !== this.thread) continue;
          if (!stateOnly) this.facets("event", ev);
          if (withState) this.advance("event", ev);
        }
        return;
      }
      if (b.header && b.header.threadId && b.header.threadId !== this.thread) return;
      if (!stateOnly) this.facets(kind, b);
      if (withState) this.advance(kind, b);
    }

    // lastSeq is the highest sequence of this thread in a record (0: none).
    lastSeq(rec) {
      const [kind, b] = body(rec.message);
      const evs = kind === "eventBatch" ? (b.events || []).filter((e) => e.header && e.header.threadId === this.thread) : [b];
      return Math.max(0, ...evs.map(seqOf));
    }

    facets(kind, b) {
      const seq = seqOf(b);
      if (seq && this.seen.has(seq)) return;
      if (seq) this.seen.add(seq);
      this.maxSeq = Math.max(this.maxSeq, seq);
      const ts = tsOf(b);
      let node = "", text = "";
      switch (kind) {
        case "event": {
          const a = attrs(b.attributes), et = ename(b.eventType);
          node = b.nodeId || "";
          text = et + (node ? " " + node : "");
          if (et === "GRAPH_START") {
            this.graphName = a.graph_name || this.graphName;
            if (a.graph_schema_json) {
              try { this.graph = JSON.parse(a.graph_schema_json); } catch (e) { this.stateErrors.push("graph_schema_json: " + e.message); }
            }
          }
          if (et === "GRAPH_START" || et === "GRAPH_END" || et === "GRAPH_ERROR") this.lifecycle(et, seq);
          if (node && /^NODE_(START|END|ERROR)$/.test(et)) {
            const n = this.nodes[node] || (this.nodes[node] = { status: "pending", seq: 0, visits: 0 });
            if (et === "NODE_START") n.visits++;
            if (seq >= n.seq) {
              n.seq = seq;
              n.status = et === "NODE_START" ? "running" : et === "NODE_ERROR" || a.success === false ? "failed" : "done";
            }
          }
          if (b.llmRequestId && et === "LLM_START") {
            this.llmNodes[b.llmRequestId] = node;
            const c = this.call(b.llmRequestId, seq);
            c.node = node;
            c.model = c.model || a.model || "";
          }
          if (b.llmRequestId && et === "LLM_END") this.call(b.llmRequestId, seq).ended = true;
          if (et === "GRAPH_END" && a.final_state_hash) this.finalHash = { seq, hash: a.final_state_hash };
          if (a.status && et === "GRAPH_END") text += " · " + a.status;
          if (a.thought) text += " · " + a.thought;
          else if (a.substep) text += " · " + a.substep;
          else if (a.progress !== undefined) text += " · " + Math.round(a.progress * 100) + "%";
          break;
        }
        case "tokenChunk": {
          const c = this.call(b.requestId || "?", seq);
          c.chunks[b.chunkIndex || 0] = b.text || "";
          c.model = b.model || c.model;
          if (b.isFinal) { c.final = true; c.finish = String(b.finishReason || "").replace(/^FINISH_REASON_/, ""); }
          if (b.stats) c.tokens = Math.max(c.tokens, b.stats.completionTokens || 0);
          node = c.node || this.llmNodes[b.requestId] || "";
          text = "token chunk " + (b.chunkIndex || 0) + (b.isFinal ? " (final)" : "") + " · " + JSON.stringify(short(b.text || "", 40));
          break;
        }
        case "toolExecution": {
          const id = b.callId || "?";
          const t = this.tools[id] || (this.tools[id] = { tool: b.toolName || "", stage: "", stageSeq: 0, args: "", result: "", error: "", seq, durationUs: "" });
          t.tool = b.toolName || t.tool;
          if (seq >= t.stageSeq) { t.stage = stage(b.stage); t.stageSeq = seq; }
          if (b.arguments) t.args = bytesText(b.arguments);
          if (b.result) t.result = bytesText(b.result);
          if (b.error) t.error = b.error;
          if (b.durationUs) t.durationUs = b.durationUs;
          t.seq = Math.min(t.seq || seq, seq);
          this.trim(this.tools);
          node = this.toolNode(t.tool);
          text = "tool " + t.tool + " " + stage(b.stage) + (b.error ? ": " + b.error : "");
          break;
        }
        case "stateDiff":
          text = b.fullState ? "state: full state" : "state: " + (b.operations || []).length + " operations";
          break;
        case "checkpoint":
          text = "checkpoint " + (b.stateType || "") + (b.storageUri ? " · " + b.storageUri : "");
          break;
        case "metrics":
          text = "metrics " + (b.scope || "") + " " + (b.scopeId || "");
          break;
        case "error":
          text = "error " + String(b.severity || "").replace(/^ERROR_SEVERITY_/, "") + " " + (b.errorCode || "") + ": " + (b.message || "");
          node = (b.context && b.context.node) || "";
          break;
        default:
          text = kind;
      }
      this.timeline.push({ seq, ts, kind, node, text: short(text, MAX_TEXT) });
      if (this.timeline.length > 1 && this.timeline[this.timeline.length - 2].seq > seq) this.timeline.sort((x, y) => x.seq - y.seq);
      if (this.timeline.length > MAX_TIMELINE) this.timeline.splice(0, this.timeline.length - MAX_TIMELINE);
    }

    lifecycle(et, seq) {
      if (seq < (this.lifeSeq || 0)) return;
      this.lifeSeq = seq;
      this.status = et === "GRAPH_START" ? "running" : et === "GRAPH_END" ? "completed" : "failed";
    }

    call(id, seq) {
      const c = this.llm[id] || (this.llm[id] = { node: this.llmNodes[id] || "", model: "", chunks: {}, final: false, finish: "", seq, tokens: 0 });
      c.seq = Math.min(c.seq || seq, seq);
      this.trim(this.llm);
      return c;
    }

    // trim keeps the newest MAX_CALLS calls (by first sequence).
    trim(m) {
      const ids = Object.keys(m);
      if (ids.length <= MAX_CALLS) return;
      ids.sort((a, b) => m[a].seq - m[b].seq);
      for (const id of ids.slice(0, ids.length - MAX_CALLS)) delete m[id];
    }

    toolNode(tool) {
      const g = this.graph;
      const n = g && (g.nodes || []).find((x) => x.tool === tool);
      return n ? n.name : "";
    }

    // advance moves the state on by one record (in order).
    advance(kind, b) {
      const seq = seqOf(b);
      try {
        if (kind === "event" && ename(b.eventType) === "GRAPH_START") {
          const a = attrs(b.attributes);
          if (a.initial_state_json) this.full(JSON.parse(a.initial_state_json), seq, "GRAPH_START initial_state_json");
        } else if (kind === "event" && ename(b.eventType) === "GRAPH_END") {
          const a = attrs(b.attributes);
          if (a.final_state_hash && this.state !== null) this.check(seq, a.final_state_hash, stateHash(this.state), "GRAPH_END final_state_hash");
        } else if (kind === "checkpoint" && b.state && (!b.stateType || b.stateType === "json")) {
          const raw = b64bytes(b.state);
          this.full(JSON.parse(utf8.decode(raw)), seq, "checkpoint");
          if (b.checksum) this.check(seq, hex(b64bytes(b.checksum)), hex(sha256(raw)), "checkpoint checksum");
        } else if (kind === "stateDiff") {
          let s = this.state;
          if (b.fullState) { s = JSON.parse(b64text(b.fullState)); this.stateFrom = "StateDiff full_state"; }
          if (s === null) {
            this.stateErrors.push("seq " + seq + ": a StateDiff before any full state: not applied");
            return;
          }
          for (const op of b.operations || []) s = applyOp(s, op);
          this.state = s;
          this.stateSeq = seq;
          if (b.stateHash) this.check(seq, hex(b64bytes(b.stateHash)), stateHash(s), "StateDiff state_hash");
        }
      } catch (e) {
        this.stateErrors.push("seq " + seq + ": " + e.message);
        if (this.stateErrors.length > 20) this.stateErrors.shift();
      }
    }

    full(state, seq, what) {
      this.state = state;
      this.stateSeq = seq;
      this.stateFrom = what;
    }

    check(seq, expected, computed, what) {
      const match = expected === computed;
      this.hash.checks++;
      if (!match) this.hash.mismatches++;
      this.hash.last = { seq, expected, computed, match, what };
      if (what === "StateDiff state_hash") this.hash.lastDiff = this.hash.last;
    }

    // toJSON / restore: the snapshot kept in sessionStorage with the cursor.
    toJSON() {
      const o = Object.assign({}, this);
      o.seen = [...this.seen];
      return o;
    }

    static restore(o) {
      const m = new RunModel(o.thread);
      Object.assign(m, o);
      m.seen = new Set(o.seen || []);
      return m;
    }
  }

  root.DashStreamRun = { RunModel, canonical, stateHash, sha256, hex, applyOp, b64text, attrs };
})(globalThis);
