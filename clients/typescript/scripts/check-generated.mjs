// CI: src/generated/openapi.d.ts must be exactly what `npm run generate` makes from
// docs/openapi.json (which tests/integration/test_openapi_doc.py keeps equal to what the service serves).
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const committed = `${root}src/generated/openapi.d.ts`;
const fresh = `${root}build/openapi.d.ts`;
mkdirSync(`${root}build`, { recursive: true });
const generate = spawnSync(
  `${root}node_modules/.bin/openapi-typescript`,
  [`${root}../../docs/openapi.json`, "--output", fresh],
  { stdio: ["ignore", "ignore", "inherit"] },
);
if (generate.status !== 0) {
  console.error("openapi-typescript failed");
  process.exit(1);
}
if (readFileSync(committed, "utf8") !== readFileSync(fresh, "utf8")) {
  spawnSync("diff", ["-u", committed, fresh], { stdio: "inherit" });
  console.error(
    "clients/typescript/src/generated/openapi.d.ts is stale against docs/openapi.json: " +
      "run `npm run generate` in clients/typescript and commit the result",
  );
  process.exit(1);
}
console.log("src/generated/openapi.d.ts matches docs/openapi.json");
