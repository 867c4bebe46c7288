// Node 20 cannot run TypeScript: esbuild compiles each test/*.test.ts to build/test/*.js,
// then node's own test runner runs them.
import { spawnSync } from "node:child_process";
import { readdirSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));
const outdir = `${root}build/test`;
const tests = readdirSync(`${root}test`).filter((name) => name.endsWith(".test.ts"));
rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: tests.map((name) => `${root}test/${name}`),
  outdir,
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node20",
  packages: "external",
  logLevel: "warning",
});
const files = tests.map((name) => `${outdir}/${name.replace(/\.ts$/, ".js")}`);
const run = spawnSync(process.execPath, ["--test", "--test-reporter=spec", ...files], { stdio: "inherit" });
process.exit(run.status ?? 1);
