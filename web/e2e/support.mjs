// Helpers the UI test files share.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import vm from "node:vm";

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

// waitFor polls fn (sync or async) until it returns a truthy value.
export async function waitFor(what, fn, timeout = 10000) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline) throw new Error("timed out after " + timeout + " ms waiting for " + what + " (last: " + JSON.stringify(last) + ")");
    await new Promise((r) => setTimeout(r, 100));
  }
}

// loadStatic runs web/static/<file> (a classic script) in a fresh context
// holding only globals, and returns the global it defines.
export function loadStatic(file, globals, name) {
  const ctx = vm.createContext(globals);
  vm.runInContext(fs.readFileSync(path.join(REPO, "web/static", file), "utf8"), ctx, { filename: file });
  return ctx[name];
}
