import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { RecorderClient } from "../src/index.js";
import { retryAfterMs } from "../src/retry-after.js";
import { FakeFetch, error, recordingSleep, started } from "./fake-fetch.js";

const BASE = "https://recorder.example";

function client(fake: FakeFetch, sleep: (ms: number) => Promise<void>, maxWaitMs?: number): RecorderClient {
  return new RecorderClient({ baseUrl: `${BASE}/`, fetch: fake.fetch, sleep, ...(maxWaitMs === undefined ? {} : { maxWaitMs }) });
}

describe("startRecordings", () => {
  test("posts JSON to the meeting's start path and reports each type started", async () => {
    const fake = new FakeFetch({ "raw-tracks": [started("raw-tracks")], cloud: [started("cloud")] });
    const { sleep, pauses } = recordingSleep();
    const outcomes = await client(fake, sleep).startRecordings("a b/c", { types: ["raw-tracks", "cloud"] });
    assert.deepEqual(outcomes, [
      { type: "raw-tracks", ok: true, status: "started", httpStatus: 200, instanceId: "instance-of-raw-tracks" },
      { type: "cloud", ok: true, status: "started", httpStatus: 200, instanceId: "instance-of-cloud" },
    ]);
    for (const request of fake.seen) {
      assert.equal(request.url, `${BASE}/v1/meetings/a%20b%2Fc/recordings/start`);
      assert.equal(request.method, "POST");
      assert.equal(request.contentType, "application/json");
    }
    assert.deepEqual(fake.seen.map((r) => (r.body as { type: string }).type).sort(), ["cloud", "raw-tracks"]);
    assert.deepEqual(pauses, []);
  });

  test("already_active counts as success", async () => {
    const fake = new FakeFetch({ cloud: [started("cloud", "already_active")] });
    const [outcome] = await client(fake, recordingSleep().sleep).startRecordings("m-1", { types: ["cloud"] });
    assert.deepEqual(outcome, {
      type: "cloud",
      ok: true,
      status: "already_active",
      httpStatus: 200,
      instanceId: "instance-of-cloud",
    });
  });

  test("starts the types concurrently and reports them in the order asked", { timeout: 10_000 }, async () => {
    // Neither answer is given until both requests are in flight: a client that waited for
    // one type before asking for the next would never finish.
    let arrived = 0;
    let release = (): void => {};
    const bothSent = new Promise<void>((resolve) => {
      release = resolve;
    });
    const held = (type: string) => async (): Promise<Response> => {
      arrived += 1;
      if (arrived === 2) release();
      await bothSent;
      return started(type);
    };
    const fake = new FakeFetch({ "raw-tracks": [held("raw-tracks")], cloud: [held("cloud")] });
    const outcomes = await client(fake, recordingSleep().sleep).startRecordings("m-1", {
      types: ["cloud", "raw-tracks"],
    });
    assert.deepEqual(
      outcomes.map((o) => [o.type, o.status]),
      [
        ["cloud", "started"],
        ["raw-tracks", "started"],
      ],
    );
  });

  test("a 409 with Retry-After is retried after that pause", async () => {
    const fake = new FakeFetch({
      "raw-tracks": [error(409, "room is not hosting a call yet", { "Retry-After": "2" }), started("raw-tracks")],
    });
    const { sleep, pauses } = recordingSleep();
    const [outcome] = await client(fake, sleep).startRecordings("m-1", { types: ["raw-tracks"] });
    assert.equal(outcome?.status, "started");
    assert.deepEqual(pauses, [2000]);
    assert.equal(fake.seen.length, 2);
  });

  test("a 409 without Retry-After is refused at once with the service's detail", async () => {
    const fake = new FakeFetch({ cloud: [error(409, "the meeting has ended")] });
    const { sleep, pauses } = recordingSleep();
    const [outcome] = await client(fake, sleep).startRecordings("m-1", { types: ["cloud"] });
    assert.deepEqual(outcome, {
      type: "cloud",
      ok: false,
      status: "refused",
      httpStatus: 409,
      detail: "the meeting has ended",
    });
    assert.deepEqual(pauses, []);
    assert.equal(fake.seen.length, 1);
  });

  test("a 429 is retried after Retry-After, or after a second when it has none", async () => {
    const fake = new FakeFetch({
      cloud: [error(429, "slow down", { "Retry-After": "3" }), error(429, "slow down"), started("cloud")],
    });
    const { sleep, pauses } = recordingSleep();
    const [outcome] = await client(fake, sleep).startRecordings("m-1", { types: ["cloud"] });
    assert.equal(outcome?.status, "started");
    assert.deepEqual(pauses, [3000, 1000]);
  });

  test("retries stop once maxWaitMs would be exceeded, and the outcome says so", async () => {
    const fake = new FakeFetch({ "raw-tracks": [error(409, "not hosting", { "Retry-After": "10" })] });
    const { sleep, pauses } = recordingSleep();
    const [outcome] = await client(fake, sleep, 25_000).startRecordings("m-1", { types: ["raw-tracks"] });
    assert.deepEqual(pauses, [10_000, 10_000]);
    assert.equal(fake.seen.length, 3);
    assert.equal(outcome?.ok, false);
    assert.equal(outcome?.status, "failed");
    assert.equal(outcome?.httpStatus, 409);
    assert.match(outcome?.detail ?? "", /^not hosting \(gave up: maxWaitMs 25000 spent\)$/);
  });

  test("a Retry-After beyond maxWaitMs is not waited for", async () => {
    const fake = new FakeFetch({ cloud: [error(429, "budget spent", { "Retry-After": "120" })] });
    const { sleep, pauses } = recordingSleep();
    const [outcome] = await client(fake, sleep).startRecordings("m-1", { types: ["cloud"] });
    assert.deepEqual(pauses, []);
    assert.equal(outcome?.status, "failed");
    assert.equal(outcome?.httpStatus, 429);
  });

  for (const status of [400, 404, 413, 415]) {
    test(`a ${status} is refused and never retried`, async () => {
      const fake = new FakeFetch({ cloud: [error(status, `answer ${status}`, { "Retry-After": "1" })] });
      const { sleep, pauses } = recordingSleep();
      const [outcome] = await client(fake, sleep).startRecordings("m-1", { types: ["cloud"] });
      assert.deepEqual(outcome, { type: "cloud", ok: false, status: "refused", httpStatus: status, detail: `answer ${status}` });
      assert.equal(fake.seen.length, 1);
      assert.deepEqual(pauses, []);
    });
  }

  test("a 502 (Daily failed after the service's own retries) fails without a retry", async () => {
    const fake = new FakeFetch({ cloud: [error(502, "Daily answered 500: server-error")] });
    const [outcome] = await client(fake, recordingSleep().sleep).startRecordings("m-1", { types: ["cloud"] });
    assert.deepEqual(outcome, {
      type: "cloud",
      ok: false,
      status: "failed",
      httpStatus: 502,
      detail: "Daily answered 500: server-error",
    });
    assert.equal(fake.seen.length, 1);
  });

  test("a 503 is retried with a growing pause, bounded by maxWaitMs", async () => {
    const fake = new FakeFetch({ cloud: [new Response("<html>Service Unavailable</html>", { status: 503 })] });
    const { sleep, pauses } = recordingSleep();
    const [outcome] = await client(fake, sleep, 10_000).startRecordings("m-1", { types: ["cloud"] });
    assert.deepEqual(pauses, [1000, 2000, 4000]);
    assert.equal(outcome?.status, "failed");
    assert.equal(outcome?.httpStatus, 503);
    assert.match(outcome?.detail ?? "", /^<html>Service Unavailable<\/html> \(gave up/);
  });

  test("no answer at all (network or CORS refusal) fails at once, without httpStatus", async () => {
    const fake = new FakeFetch({ cloud: [new TypeError("Failed to fetch")] });
    const { sleep, pauses } = recordingSleep();
    const [outcome] = await client(fake, sleep).startRecordings("m-1", { types: ["cloud"] });
    assert.deepEqual(outcome, { type: "cloud", ok: false, status: "failed", detail: "no answer: Failed to fetch" });
    assert.deepEqual(pauses, []);
  });

  test("one type's refusal does not affect the other's start", async () => {
    const fake = new FakeFetch({
      "raw-tracks": [started("raw-tracks")],
      cloud: [error(409, "video is off for this meeting")],
    });
    const outcomes = await client(fake, recordingSleep().sleep).startRecordings("m-1", {
      types: ["raw-tracks", "cloud"],
    });
    assert.deepEqual(
      outcomes.map((o) => [o.type, o.ok, o.status]),
      [
        ["raw-tracks", true, "started"],
        ["cloud", false, "refused"],
      ],
    );
  });

  test("a 200 that is not a start answer is a failure, not a success", async () => {
    const fake = new FakeFetch({ cloud: [new Response("<html>captive portal</html>", { status: 200 })] });
    const [outcome] = await client(fake, recordingSleep().sleep).startRecordings("m-1", { types: ["cloud"] });
    assert.equal(outcome?.ok, false);
    assert.equal(outcome?.status, "failed");
  });

  test("aborting during a pause rejects with the signal's reason", async () => {
    const fake = new FakeFetch({ cloud: [error(409, "not hosting", { "Retry-After": "5" })] });
    const controller = new AbortController();
    const sleep = (): Promise<void> => {
      controller.abort();
      return new Promise(() => {}); // never ends by itself
    };
    await assert.rejects(
      client(fake, sleep).startRecordings("m-1", { types: ["cloud"], signal: controller.signal }),
      { name: "AbortError" },
    );
    assert.equal(fake.seen.length, 1);
  });

  test("an already aborted signal rejects", async () => {
    const fake = new FakeFetch({ cloud: [started("cloud")] });
    await assert.rejects(
      client(fake, recordingSleep().sleep).startRecordings("m-1", { types: ["cloud"], signal: AbortSignal.abort() }),
      { name: "AbortError" },
    );
  });

  test("no types, no requests", async () => {
    const fake = new FakeFetch({});
    assert.deepEqual(await client(fake, recordingSleep().sleep).startRecordings("m-1", { types: [] }), []);
    assert.equal(fake.seen.length, 0);
  });
});

describe("cloudRecordingUrl", () => {
  const recorder = new RecorderClient({ baseUrl: "https://recorder.example/" });

  test("is the meeting's playback path, with the token as a query parameter", () => {
    assert.equal(
      recorder.cloudRecordingUrl("5b0b5d1c-2a33", "1767261600.abc-_x"),
      "https://recorder.example/v1/meetings/5b0b5d1c-2a33/cloud-recording?token=1767261600.abc-_x",
    );
  });

  test("without a token has no query, and ids and tokens are URL-encoded", () => {
    assert.equal(recorder.cloudRecordingUrl("a/b"), "https://recorder.example/v1/meetings/a%2Fb/cloud-recording");
    assert.match(recorder.cloudRecordingUrl("m", "a+b&c"), /\?token=a%2Bb%26c$/);
  });
});

describe("retryAfterMs", () => {
  const now = Date.parse("2026-01-01T10:00:00Z");

  test("reads whole seconds and HTTP dates", () => {
    assert.equal(retryAfterMs("3", now), 3000);
    assert.equal(retryAfterMs(" 0 ", now), 0);
    assert.equal(retryAfterMs("Thu, 01 Jan 2026 10:00:07 GMT", now), 7000);
    assert.equal(retryAfterMs("Thu, 01 Jan 2026 09:00:00 GMT", now), 0);
  });

  test("is undefined when missing or unreadable", () => {
    assert.equal(retryAfterMs(null, now), undefined);
    assert.equal(retryAfterMs("soon", now), undefined);
    assert.equal(retryAfterMs("-1", now), undefined);
  });
});
