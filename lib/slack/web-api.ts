/**
 * Slack's Web API over fetch: `POST <apiUrl><method>` with the bot token as a
 * bearer token. Slack answers HTTP 200 with `{"ok": true, …}` or `{"ok": false,
 * "error": "<code>"}`, and HTTP 429 with `Retry-After: <seconds>` when a method's
 * rate limit is reached. Calls are retried while the caller's time allows:
 * after the Retry-After Slack asks for, and with backoff after a 5xx or a
 * network failure. Anything else Slack refuses is a SlackApiError naming its code.
 */

/** Methods that take a JSON body; the others take form fields (Slack reads JSON only where a method says so). */
const JSON_METHODS = new Set(['chat.postMessage', 'chat.update', 'chat.postEphemeral', 'views.open']);
/** One attempt never waits longer than this for Slack's answer. */
const ATTEMPT_TIMEOUT_MS = 5_000;
/** The first backoff after a 5xx or a network failure; doubled on each further one. */
const BACKOFF_MS = 250;

/** Slack refused a call (`ok: false`), or could not be reached in the time allowed. */
export class SlackApiError extends Error {
  override readonly name = 'SlackApiError';
  constructor(
    readonly method: string,
    /** Slack's error code (`channel_not_found`, `invalid_auth`, …), or `ratelimited`/`unreachable` when retries ran out. */
    readonly code: string,
    options?: ErrorOptions,
  ) {
    super(`Slack ${method} failed: ${code}`, options);
  }

  /** Whether asking again later may succeed. */
  get transient(): boolean {
    return this.code === 'ratelimited' || this.code === 'unreachable' || this.code === 'internal_error' || this.code === 'service_unavailable';
  }
}

export interface SlackWebApiOptions {
  /** e.g. https://slack.com/api/ */
  apiUrl: string;
  /** The bot token (xoxb-…), read when first needed. */
  token: () => Promise<string>;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

export type SlackArguments = Record<string, unknown>;
export type SlackAnswer = { ok: true } & Record<string, unknown>;

/** A Slack Web API client for one app (one bot token). */
export class SlackWebApi {
  constructor(private readonly options: SlackWebApiOptions) {}

  /**
   * Calls one method, retrying throttling and transient failures until
   * `budgetMs` has passed; returns Slack's answer when it says `ok`.
   */
  async call(method: string, args: SlackArguments, { budgetMs }: { budgetMs: number }): Promise<SlackAnswer> {
    const { fetch: send = fetch, sleep = wait, now = Date.now } = this.options;
    const deadline = now() + budgetMs;
    const token = await this.options.token();
    for (let attempt = 0; ; attempt++) {
      let retryAfterMs: number;
      let lastCode: string;
      let cause: unknown;
      try {
        const response = await send(new URL(method, this.options.apiUrl), {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': contentTypeOf(method) },
          body: encode(method, args),
          signal: AbortSignal.timeout(Math.max(1, Math.min(ATTEMPT_TIMEOUT_MS, deadline - now()))),
        });
        if (response.status === 429) {
          await response.body?.cancel();
          retryAfterMs = retryAfterOf(response.headers.get('retry-after'));
          lastCode = 'ratelimited';
        } else if (response.status >= 500) {
          await response.body?.cancel();
          retryAfterMs = BACKOFF_MS * 2 ** attempt;
          lastCode = 'unreachable';
        } else {
          const answer = await answerOf(method, response);
          if (answer.ok === true) return answer as SlackAnswer;
          const code = typeof answer.error === 'string' ? answer.error : 'unknown_error';
          if (code !== 'ratelimited') throw new SlackApiError(method, code);
          retryAfterMs = retryAfterOf(response.headers.get('retry-after'));
          lastCode = code;
        }
      } catch (error) {
        if (error instanceof SlackApiError) throw error;
        // fetch failed, or the attempt timed out: Slack may not have seen it, or may have.
        cause = error;
        retryAfterMs = BACKOFF_MS * 2 ** attempt;
        lastCode = 'unreachable';
      }
      if (now() + retryAfterMs >= deadline) throw new SlackApiError(method, lastCode, cause === undefined ? undefined : { cause });
      await sleep(retryAfterMs);
    }
  }
}

function contentTypeOf(method: string): string {
  return JSON_METHODS.has(method) ? 'application/json; charset=utf-8' : 'application/x-www-form-urlencoded';
}

function encode(method: string, args: SlackArguments): string {
  if (JSON_METHODS.has(method)) return JSON.stringify(args);
  const form = new URLSearchParams();
  for (const [name, value] of Object.entries(args)) {
    if (value !== undefined) form.set(name, typeof value === 'string' ? value : JSON.stringify(value));
  }
  return form.toString();
}

async function answerOf(method: string, response: Response): Promise<Record<string, unknown>> {
  try {
    const answer: unknown = await response.json();
    if (typeof answer === 'object' && answer !== null) return answer as Record<string, unknown>;
  } catch (error) {
    throw new SlackApiError(method, 'invalid_response', { cause: error });
  }
  throw new SlackApiError(method, 'invalid_response');
}

/** Retry-After in seconds (Slack sends whole seconds); a missing or odd value counts as one second. */
function retryAfterOf(header: string | null): number {
  const seconds = Number(header);
  return Number.isFinite(seconds) && seconds > 0 ? Math.ceil(seconds) * 1000 : 1000;
}

function wait(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
