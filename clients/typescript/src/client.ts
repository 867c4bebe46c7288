import type { paths } from "./generated/openapi.js";
import { retryAfterMs } from "./retry-after.js";

type StartOperation = paths["/v1/meetings/{meeting_id}/recordings/start"]["post"];
export type StartRequest = StartOperation["requestBody"]["content"]["application/json"];
export type StartResponse = StartOperation["responses"][200]["content"]["application/json"];
export type ErrorBody = StartOperation["responses"][400]["content"]["application/json"];
export type RecordingType = StartRequest["type"];

/**
 * - `started`: this call started the recording at Daily.
 * - `already_active`: it was already running (another participant's call, or an earlier one).
 * - `refused`: the service said no for a reason a retry does not change (400, 404, 409 without
 *   `Retry-After`, 415, …): unknown meeting, meeting ended, video off, bad request.
 * - `failed`: no answer, a server error, or still not startable when `maxWaitMs` ran out
 *   (409 with `Retry-After`, 429, 503); trying again later may succeed.
 */
export type StartStatus = StartResponse["status"] | "refused" | "failed";

export interface StartOutcome {
  type: RecordingType;
  /** true for `started` and `already_active`: the recording is running. */
  ok: boolean;
  status: StartStatus;
  /** The last HTTP status received; absent when no answer came (network or CORS error). */
  httpStatus?: number;
  /** The service's error `detail`, or what went wrong. */
  detail?: string;
  /** Daily's instanceId of the recording, when it runs. */
  instanceId?: string;
}

export interface RecorderClientOptions {
  /** The service's public base URL, e.g. `https://recorder.example.com`. */
  baseUrl: string;
  /** Defaults to the global `fetch`. */
  fetch?: typeof fetch;
  /** Longest time one type's start keeps retrying (409 with Retry-After, 429, 503). Default 30000. */
  maxWaitMs?: number;
  /** How to pause between retries; tests inject a fake. Defaults to `setTimeout`. */
  sleep?: (ms: number) => Promise<void>;
}

export interface StartOptions {
  types: RecordingType[];
  /** Aborting rejects `startRecordings` with the signal's reason. */
  signal?: AbortSignal;
}

const DEFAULT_MAX_WAIT_MS = 30_000;
// 429 without Retry-After (the service always sends one; a proxy may not), and 503's first pause.
const DEFAULT_PAUSE_MS = 1_000;
const MAX_DETAIL_CHARS = 300;

/** What one request gave: a final outcome, or an outcome to report if no retry follows. */
interface Attempt {
  outcome: StartOutcome;
  retryAfterMs?: number;
}

export class RecorderClient {
  readonly #baseUrl: string;
  readonly #fetch: typeof fetch;
  readonly #maxWaitMs: number;
  readonly #sleep: (ms: number) => Promise<void>;

  constructor(opts: RecorderClientOptions) {
    this.#baseUrl = opts.baseUrl.replace(/\/+$/, "");
    const fetchImpl = opts.fetch ?? globalThis.fetch;
    // Called as a plain function: window.fetch invoked as a method of another object throws
    // "Illegal invocation".
    this.#fetch = (input, init) => fetchImpl(input, init);
    this.#maxWaitMs = opts.maxWaitMs ?? DEFAULT_MAX_WAIT_MS;
    if (!(this.#maxWaitMs >= 0)) throw new RangeError("maxWaitMs must be a number >= 0");
    this.#sleep = opts.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  /**
   * Asks the service to start each type (concurrently) and reports each one's outcome, in the
   * order of `types`. Never rejects, except when `signal` aborts.
   */
  async startRecordings(meetingId: string, opts: StartOptions): Promise<StartOutcome[]> {
    return Promise.all(opts.types.map((type) => this.#start(meetingId, type, opts.signal)));
  }

  /**
   * The playback URL of the meeting's cloud recording, for a `<video>` element's `src`: the
   * service answers it with a redirect to the media. `token` is a playback token minted by
   * Reflector's backend; the service requires one unless it runs with open playback.
   */
  cloudRecordingUrl(meetingId: string, token?: string): string {
    const url = `${this.#baseUrl}/v1/meetings/${encodeURIComponent(meetingId)}/cloud-recording`;
    return token === undefined ? url : `${url}?token=${encodeURIComponent(token)}`;
  }

  async #start(meetingId: string, type: RecordingType, signal?: AbortSignal): Promise<StartOutcome> {
    const began = Date.now();
    let pausedMs = 0;
    let unavailableCount = 0;
    for (;;) {
      const attempt = await this.#attempt(meetingId, type, signal);
      signal?.throwIfAborted();
      let pauseMs = attempt.retryAfterMs;
      if (pauseMs === undefined) return attempt.outcome;
      if (attempt.outcome.httpStatus === 503) {
        // No Retry-After on a 503: back off 1 s, 2 s, 4 s, …
        pauseMs = Math.max(pauseMs, DEFAULT_PAUSE_MS * 2 ** unavailableCount);
        unavailableCount += 1;
      }
      // Wall-clock time counts too (each request may itself take seconds); an injected sleep
      // that returns at once still adds up to the bound through pausedMs.
      const waitedMs = Math.max(pausedMs, Date.now() - began);
      if (waitedMs + pauseMs > this.#maxWaitMs) {
        const detail = attempt.outcome.detail ?? `HTTP ${attempt.outcome.httpStatus ?? "error"}`;
        return { ...attempt.outcome, detail: `${detail} (gave up: maxWaitMs ${this.#maxWaitMs} spent)` };
      }
      await pause(this.#sleep, pauseMs, signal);
      pausedMs += pauseMs;
    }
  }

  async #attempt(meetingId: string, type: RecordingType, signal?: AbortSignal): Promise<Attempt> {
    const url = `${this.#baseUrl}/v1/meetings/${encodeURIComponent(meetingId)}/recordings/start`;
    const body: StartRequest = { type };
    let response: Response;
    try {
      response = await this.#fetch(url, {
        method: "POST",
        // JSON, never text/plain: the service refuses other types (415), and this one makes the
        // browser send a CORS preflight, so a page of a foreign origin cannot start recordings.
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(body),
        signal: signal ?? null,
      });
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      // A CORS refusal looks the same as a network error to the page ("Failed to fetch").
      return { outcome: { type, ok: false, status: "failed", detail: `no answer: ${describe(error)}` } };
    }
    const httpStatus = response.status;
    if (response.ok) return { outcome: await readStarted(type, response) };
    const detail = await readDetail(response);
    const retryAfter = retryAfterMs(response.headers.get("Retry-After"), Date.now());
    const failed: StartOutcome = { type, ok: false, status: "failed", httpStatus, detail };
    switch (httpStatus) {
      case 409:
        // With Retry-After: Daily does not see the call yet. Without: the meeting's state
        // (ended, video off, no cloud recording) forbids it, for good.
        return retryAfter === undefined
          ? { outcome: { ...failed, status: "refused" } }
          : { outcome: failed, retryAfterMs: retryAfter };
      case 429:
        return { outcome: failed, retryAfterMs: retryAfter ?? DEFAULT_PAUSE_MS };
      case 503:
        return { outcome: failed, retryAfterMs: retryAfter ?? 0 };
      default:
        // 502 means Daily failed after the service's own bounded retries: not retried here.
        return { outcome: httpStatus < 500 ? { ...failed, status: "refused" } : failed };
    }
  }
}

async function readStarted(type: RecordingType, response: Response): Promise<StartOutcome> {
  const httpStatus = response.status;
  let answer: Partial<StartResponse>;
  try {
    answer = (await response.json()) as Partial<StartResponse>;
  } catch (error) {
    return { type, ok: false, status: "failed", httpStatus, detail: `unreadable answer: ${describe(error)}` };
  }
  if (answer.status !== "started" && answer.status !== "already_active") {
    return { type, ok: false, status: "failed", httpStatus, detail: `unexpected answer: ${String(answer.status)}` };
  }
  const outcome: StartOutcome = { type, ok: true, status: answer.status, httpStatus };
  if (typeof answer.instanceId === "string") outcome.instanceId = answer.instanceId;
  return outcome;
}

async function readDetail(response: Response): Promise<string> {
  let text: string;
  try {
    text = await response.text();
  } catch {
    return response.statusText || `HTTP ${response.status}`;
  }
  try {
    const body = JSON.parse(text) as Partial<ErrorBody>;
    if (typeof body.detail === "string") return body.detail;
  } catch {
    // not JSON (a proxy's error page): quote the start of it
  }
  return text.slice(0, MAX_DETAIL_CHARS) || response.statusText || `HTTP ${response.status}`;
}

async function pause(sleep: (ms: number) => Promise<void>, ms: number, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted();
  if (signal === undefined) return sleep(ms);
  let onAbort = (): void => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    await Promise.race([sleep(ms), aborted]);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
