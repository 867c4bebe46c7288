// The network edge of the client, faked: records each request and answers from a script.

export interface SeenRequest {
  url: string;
  method: string;
  contentType: string | null;
  body: unknown;
}

export type Answer = Response | Error | ((request: SeenRequest) => Response | Promise<Response>);

export class FakeFetch {
  readonly seen: SeenRequest[] = [];
  readonly #answers: Map<string, Answer[]>;

  /** `answers` per recording type, used in order; the last one repeats. */
  constructor(answers: Record<string, Answer[]>) {
    this.#answers = new Map(Object.entries(answers));
  }

  readonly fetch: typeof fetch = async (input, init) => {
    const headers = new Headers(init?.headers);
    const request: SeenRequest = {
      url: String(input),
      method: init?.method ?? "GET",
      contentType: headers.get("Content-Type"),
      body: typeof init?.body === "string" ? JSON.parse(init.body) : init?.body,
    };
    this.seen.push(request);
    init?.signal?.throwIfAborted();
    const type = (request.body as { type: string }).type;
    const queue = this.#answers.get(type) ?? [];
    const answer = queue.length > 1 ? queue.shift() : queue[0];
    if (answer === undefined) throw new Error(`no answer scripted for ${type}`);
    if (answer instanceof Error) throw answer;
    if (typeof answer === "function") return answer(request);
    return answer.clone();
  };

  requestsFor(type: string): SeenRequest[] {
    return this.seen.filter((r) => (r.body as { type: string }).type === type);
  }
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });
}

export function started(type: string, status = "started"): Response {
  return json(200, { status, type, instanceId: `instance-of-${type}`, meeting_id: "m-1" });
}

export function error(status: number, detail: string, headers: Record<string, string> = {}): Response {
  return json(status, { status_code: status, detail }, headers);
}

/** A sleep that returns at once and remembers what it was asked to wait. */
export function recordingSleep(): { sleep: (ms: number) => Promise<void>; pauses: number[] } {
  const pauses: number[] = [];
  return {
    pauses,
    sleep: async (ms) => {
      pauses.push(ms);
    },
  };
}
