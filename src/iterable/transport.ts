/**
 * HTTP to Iterable: a keep-alive connection pool, the Api-Key header, per-request timeouts,
 * cancellation, and retries with backoff according to classifyHttpFailure, through the adaptive
 * rate limiter. This is where a 429 is retried.
 */
import { performance } from "node:perf_hooks";
import { Pool } from "undici";
import {
  type AudienceSyncError,
  CancelledError,
  FatalError,
  RateLimitedError,
  RetryableError,
  redact,
} from "../errors.js";
import { backoffDelay } from "./backoff.js";
import { classifyHttpFailure, type Headers } from "./classify.js";
import { type Clock, systemClock } from "./clock.js";
import type { AdaptiveRateLimiter } from "./rate-limiter.js";

export interface RetryPolicy {
  /** Attempts per request for 408/429/5xx/network failures, the first included. */
  maxAttempts: number;
  baseMs: number;
  maxMs: number;
  /** How long a 400 invalidListId is retried: a list created a moment ago can briefly answer so
   *  (Iterable's own client tests retry it for up to a minute, NOTES.md). */
  listNotFoundRetryMs: number;
  /** A Retry-After longer than this is cut to it. */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  maxAttempts: 6,
  baseMs: 500,
  maxMs: 30_000,
  listNotFoundRetryMs: 60_000,
  maxRetryAfterMs: 120_000,
};

export interface RequestEvent {
  method: string;
  path: string;
  /** Undefined when no answer came (reset, timeout). */
  status?: number;
  durationMs: number;
  attempt: number;
}

export interface RateLimitedEvent {
  path: string;
  attempt: number;
  retryAfterMs?: number;
  /** The limiter's rate after slowing down (requests per second), when a limiter is in use. */
  rate?: number;
}

export interface RetryEvent {
  path: string;
  attempt: number;
  delayMs: number;
  reason: string;
}

/** Hooks for progress and metrics; they must not throw. */
export interface TransportEvents {
  onRequest?(e: RequestEvent): void;
  onRateLimited?(e: RateLimitedEvent): void;
  onRetry?(e: RetryEvent): void;
}

export interface TransportOptions {
  /** Scheme, host and optional path prefix, e.g. https://api.iterable.com. */
  baseUrl: string;
  apiKey: string;
  timeoutMs?: number;
  /** Sockets kept to the host. */
  connections?: number;
  retry?: Partial<RetryPolicy>;
  events?: TransportEvents;
  clock?: Clock;
  random?: () => number;
}

export interface HttpRequest {
  method: "GET" | "POST" | "DELETE";
  /** Path after the base URL, starting with /api/. */
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  json?: unknown;
  /** A JSON body already serialised, as text or UTF-8 bytes (sent as is, as application/json);
   *  instead of `json`. */
  body?: string | Uint8Array;
  signal?: AbortSignal;
  limiter?: AdaptiveRateLimiter;
  /** False for requests that must not be repeated once the server may have acted on them
   *  (creating a list): those are retried only when refused outright (429, connection refused). */
  idempotent?: boolean;
}

export interface HttpResponse {
  status: number;
  headers: Headers;
  text: string;
}

/** Codes of network errors after which the server cannot have seen the request. */
const NOT_SENT_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "UND_ERR_CONNECT_TIMEOUT",
]);

export class Transport {
  private readonly pool: Pool;
  private readonly prefix: string;
  private readonly apiKey: string;
  private readonly timeoutMs: number;
  private readonly retry: RetryPolicy;
  private readonly events: TransportEvents;
  private readonly clock: Clock;
  private readonly random: () => number;

  constructor(opts: TransportOptions) {
    const url = new URL(opts.baseUrl);
    this.prefix = url.pathname.replace(/\/+$/, "");
    this.apiKey = opts.apiKey;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.retry = { ...DEFAULT_RETRY, ...opts.retry };
    this.events = opts.events ?? {};
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? Math.random;
    this.pool = new Pool(url.origin, {
      connections: opts.connections ?? 8,
      keepAliveTimeout: 30_000,
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
    });
  }

  /** Sends with retries; resolves with the first 2xx answer, or throws the classified error
   *  (AuthError, FatalError, RetryableError once attempts are used up, CancelledError). */
  async send(req: HttpRequest): Promise<HttpResponse> {
    const started = this.clock.now();
    let attempt = 0;
    for (;;) {
      attempt++;
      if (req.limiter) await req.limiter.acquire(req.signal);
      const { response, error } = await this.attempt(req, attempt);
      if (response) {
        req.limiter?.onSuccess();
        return response;
      }
      let delayMs: number;
      if (error instanceof RateLimitedError) {
        req.limiter?.onRateLimited(error.retryAfterMs);
        this.events.onRateLimited?.({
          path: req.path,
          attempt,
          retryAfterMs: error.retryAfterMs,
          rate: req.limiter?.rate,
        });
      }
      const backoff = backoffDelay(attempt, this.retry, this.random);
      if (error instanceof FatalError && error.code === "list_not_found") {
        const left = started + this.retry.listNotFoundRetryMs - this.clock.now();
        if (left <= 0) throw error;
        delayMs = Math.min(backoff, left);
      } else if (!(error instanceof RetryableError) || !this.mayRepeat(req, error)) {
        throw error;
      } else if (attempt >= this.retry.maxAttempts) {
        throw gaveUp(error, attempt);
      } else {
        const after = error instanceof RateLimitedError ? error.retryAfterMs : undefined;
        delayMs = after !== undefined ? Math.min(after, this.retry.maxRetryAfterMs) : backoff;
      }
      this.events.onRetry?.({ path: req.path, attempt, delayMs, reason: error.message });
      await this.clock.sleep(delayMs, req.signal);
    }
  }

  async close(): Promise<void> {
    await this.pool.close();
  }

  private mayRepeat(req: HttpRequest, error: AudienceSyncError): boolean {
    if (req.idempotent !== false) return true;
    if (error instanceof RateLimitedError) return true;
    const cause = error.cause as { code?: unknown } | undefined;
    return typeof cause?.code === "string" && NOT_SENT_CODES.has(cause.code);
  }

  private async attempt(
    req: HttpRequest,
    attempt: number,
  ): Promise<
    | { response: HttpResponse; error?: undefined }
    | { response?: undefined; error: AudienceSyncError }
  > {
    if (req.signal?.aborted) throw new CancelledError("the request was cancelled");
    // One controller for the caller's signal and the time limit, undone when the attempt ends:
    // AbortSignal.any would register each request's signal with the caller's, which lives for the
    // whole run, through weak references that only a full collection clears.
    const ctrl = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ctrl.abort(new DOMException("The operation was aborted due to timeout", "TimeoutError"));
    }, this.timeoutMs);
    const outer = req.signal;
    const onAbort = () => ctrl.abort(outer?.reason);
    outer?.addEventListener("abort", onAbort, { once: true });
    const signal = ctrl.signal;
    const t0 = performance.now();
    let status: number | undefined;
    try {
      const res = await this.pool.request({
        method: req.method,
        path: this.prefix + req.path + queryString(req.query),
        headers: {
          "api-key": this.apiKey,
          ...(req.json !== undefined || req.body !== undefined
            ? { "content-type": "application/json" }
            : {}),
        },
        body: req.body ?? (req.json !== undefined ? JSON.stringify(req.json) : undefined),
        signal,
      });
      status = res.statusCode;
      // An answer can echo the request (a proxy's error page, a debugging endpoint): the key is
      // taken out before any part of the body can reach a message, a log or the warehouse.
      const text = redact(await res.body.text(), this.apiKey);
      const headers = res.headers as Headers;
      if (status >= 200 && status < 300) return { response: { status, headers, text } };
      return {
        error: classifyHttpFailure(status, text, headers, {
          now: Date.now(),
          secrets: [this.apiKey],
        }),
      };
    } catch (err) {
      if (req.signal?.aborted)
        throw new CancelledError("the request was cancelled", { cause: err });
      return { error: this.networkError(err, timedOut, status) };
    } finally {
      clearTimeout(timer);
      outer?.removeEventListener("abort", onAbort);
      this.events.onRequest?.({
        method: req.method,
        path: req.path,
        status,
        durationMs: performance.now() - t0,
        attempt,
      });
    }
  }

  private networkError(
    err: unknown,
    timedOut: boolean,
    status: number | undefined,
  ): RetryableError {
    const code = (err as { code?: unknown } | undefined)?.code;
    const isTimeout =
      timedOut || code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT";
    const detail = isTimeout
      ? `no ${status === undefined ? "answer" : "complete answer"} within ${this.timeoutMs} ms`
      : `${typeof code === "string" ? `${code}: ` : ""}${err instanceof Error ? err.message : String(err)}`;
    return new RetryableError(
      redact(`network error talking to Iterable (${detail})`, this.apiKey),
      "network_error",
      undefined,
      { cause: err },
    );
  }
}

function gaveUp(error: RetryableError, attempts: number): RetryableError {
  const message = `${error.message} (gave up after ${attempts} attempts)`;
  if (error instanceof RateLimitedError) return new RateLimitedError(message, error.retryAfterMs);
  return new RetryableError(message, error.code, error.status, { cause: error.cause });
}

function queryString(query: HttpRequest["query"]): string {
  if (!query) return "";
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
  const s = params.toString();
  return s ? `?${s}` : "";
}
