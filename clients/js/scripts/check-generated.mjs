// Fails when src/gen is not what protoc-gen-es (pinned in package.json) makes
// of the repository's proto/ today: run `npm run generate` and commit.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "dashstream-gen-"));
try {
  execFileSync(path.join(root, "node_modules/.bin/buf"), ["generate", "--template", "buf.gen.yaml", "-o", tmp], {
    cwd: root,
    stdio: ["ignore", "inherit", "inherit"],
  });
  const list = (dir) =>
    fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true }).filter((f) => fs.statSync(path.join(dir, f)).isFile()).sort() : [];
  const want = list(path.join(tmp, "src/gen"));
  const have = list(path.join(root, "src/gen"));
  const stale = [];
  for (const f of new Set([...want, ...have])) {
    const a = path.join(tmp, "src/gen", f), b = path.join(root, "src/gen", f);
    if (!fs.existsSync(a) || !fs.existsSync(b) || !fs.readFileSync(a).equals(fs.readFileSync(b))) stale.push(f);
  }
  if (want.length === 0) throw new Error("buf generate wrote nothing");
  if (stale.length) {
    console.error(`check-generated: src/gen is stale (${stale.join(", ")}): run \`npm run generate\` in clients/js and commit`);
    process.exit(1);
  }
  console.error(`check-generated: src/gen is up to date (${want.length} file(s))`);
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
