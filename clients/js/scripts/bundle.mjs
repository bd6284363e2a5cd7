// Bundles the compiled ESM (dist/index.js) with its dependencies into one
// browser module, dist/browser/dashstream-client.js (`@dashstream/client/browser`).
import { build } from "esbuild";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
await build({
  entryPoints: [path.join(root, "dist/index.js")],
  outfile: path.join(root, "dist/browser/dashstream-client.js"),
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  sourcemap: true,
  legalComments: "inline",
  logLevel: "warning",
});
