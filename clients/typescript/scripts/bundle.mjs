// node scripts/bundle.mjs OUTFILE: the client as one ES module for browsers (no dependencies).
import { build } from "esbuild";
import { fileURLToPath } from "node:url";

const outfile = process.argv[2];
if (!outfile) {
  console.error("usage: node scripts/bundle.mjs OUTFILE");
  process.exit(2);
}
await build({
  entryPoints: [fileURLToPath(new URL("../src/index.ts", import.meta.url))],
  outfile,
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  logLevel: "warning",
});
