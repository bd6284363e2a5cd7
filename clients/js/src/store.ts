// Cursor stores: where a client keeps, per resume_namespace, the last offset it
// applied on each partition (docs/PROTOCOL.md §3.10, §4 "Resume namespace").

import type { OffsetMap } from "./protocol.js";

/**
 * A CursorStore persists cursors under a key made of the client's name and
 * the gateway's resume_namespace, so that a cursor is never sent to a topic it
 * does not belong to. Methods may be synchronous or return promises.
 */
export interface CursorStore {
  load(key: string): OffsetMap | undefined | Promise<OffsetMap | undefined>;
  save(key: string, offsets: OffsetMap): void | Promise<void>;
  /** Optional: forget a key (a cursor_reset). */
  delete?(key: string): void | Promise<void>;
}

/** MemoryCursorStore keeps cursors for the life of the process (the default). */
export class MemoryCursorStore implements CursorStore {
  private readonly m = new Map<string, OffsetMap>();
  load(key: string): OffsetMap | undefined {
    const v = this.m.get(key);
    return v === undefined ? undefined : { ...v };
  }
  save(key: string, offsets: OffsetMap): void {
    this.m.set(key, { ...offsets });
  }
  delete(key: string): void {
    this.m.delete(key);
  }
}

/** The part of the Web Storage API that LocalStorageCursorStore uses. */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/**
 * LocalStorageCursorStore keeps cursors in a browser's localStorage (or any
 * StorageLike), one item per key, prefixed with `prefix`.
 */
export class LocalStorageCursorStore implements CursorStore {
  private readonly storage: StorageLike;
  private readonly prefix: string;
  constructor(options: { storage?: StorageLike; prefix?: string } = {}) {
    const s = options.storage ?? (globalThis as { localStorage?: StorageLike }).localStorage;
    if (!s) throw new Error("LocalStorageCursorStore: no localStorage here; pass options.storage");
    this.storage = s;
    this.prefix = options.prefix ?? "dashstream.cursor.";
  }
  load(key: string): OffsetMap | undefined {
    const raw = this.storage.getItem(this.prefix + key);
    if (raw === null) return undefined;
    try {
      const v: unknown = JSON.parse(raw);
      if (v === null || typeof v !== "object" || Array.isArray(v)) return undefined;
      const out: OffsetMap = {};
      for (const [p, o] of Object.entries(v as Record<string, unknown>)) {
        if (typeof o === "string" && /^(-1|0|[1-9][0-9]*)$/.test(o) && /^(0|[1-9][0-9]*)$/.test(p)) out[p] = o;
      }
      return out;
    } catch {
      return undefined; // a damaged item is no cursor
    }
  }
  save(key: string, offsets: OffsetMap): void {
    this.storage.setItem(this.prefix + key, JSON.stringify(offsets));
  }
  delete(key: string): void {
    this.storage.removeItem(this.prefix + key);
  }
}
