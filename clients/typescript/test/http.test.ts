// The client over real HTTP (node's own fetch) against a local server that answers like the
// service: 409 with Retry-After until the room hosts a call, then 200.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";

import { RecorderClient } from "../src/index.js";

interface Received {
  method: string;
  path: string;
  contentType: string | undefined;
  body: string;
}

const received: Received[] = [];
const notHostingAnswers = new Map<string, number>([
  ["raw-tracks", 1],
  ["cloud", 2],
]);

function answer(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "Content-Type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  let body = "";
  for await (const chunk of req) body += String(chunk);
  received.push({ method: req.method ?? "", path: req.url ?? "", contentType: req.headers["content-type"], body });
  const match = /^\/v1\/meetings\/([^/]+)\/recordings\/start$/.exec(req.url ?? "");
  if (req.method !== "POST" || match === null) return answer(res, 404, { status_code: 404, detail: "Not Found" });
  if (req.headers["content-type"] !== "application/json") {
    return answer(res, 415, { status_code: 415, detail: "Content-Type must be application/json" });
  }
  const meetingId = decodeURIComponent(match[1] ?? "");
  if (meetingId !== "m-1") return answer(res, 404, { status_code: 404, detail: "meeting not registered" });
  const { type } = JSON.parse(body) as { type: string };
  const left = notHostingAnswers.get(type) ?? 0;
  if (left > 0) {
    notHostingAnswers.set(type, left - 1);
    return answer(res, 409, { status_code: 409, detail: "room is not hosting a call" }, { "Retry-After": "1" });
  }
  return answer(res, 200, { status: "started", type, instanceId: `instance-of-${type}`, meeting_id: meetingId });
}

const server = createServer((req, res) => {
  handle(req, res).catch((error: unknown) => {
    res.writeHead(500);
    res.end(String(error));
  });
});
let baseUrl = "";

before(async () => {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => {
  server.close();
});

test("over real HTTP: JSON bodies, Retry-After honoured, each type reported", async () => {
  const pauses: number[] = [];
  const client = new RecorderClient({
    baseUrl,
    sleep: async (ms) => {
      pauses.push(ms);
    },
  });
  const outcomes = await client.startRecordings("m-1", { types: ["raw-tracks", "cloud"] });
  assert.deepEqual(outcomes, [
    { type: "raw-tracks", ok: true, status: "started", httpStatus: 200, instanceId: "instance-of-raw-tracks" },
    { type: "cloud", ok: true, status: "started", httpStatus: 200, instanceId: "instance-of-cloud" },
  ]);
  assert.deepEqual(pauses, [1000, 1000, 1000]);
  const starts = received.filter((r) => r.path === "/v1/meetings/m-1/recordings/start");
  assert.equal(starts.length, 5);
  for (const request of starts) {
    assert.equal(request.method, "POST");
    assert.equal(request.contentType, "application/json");
    assert.ok(["raw-tracks", "cloud"].includes((JSON.parse(request.body) as { type: string }).type));
  }

  const [unknown] = await client.startRecordings("m-2", { types: ["cloud"] });
  assert.deepEqual(unknown, {
    type: "cloud",
    ok: false,
    status: "refused",
    httpStatus: 404,
    detail: "meeting not registered",
  });
});
