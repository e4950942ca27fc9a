/**
 * The Iterable list API as a sync needs it: list calls, and subscribe / unsubscribe of record
 * streams in concurrent batches that come back as one outcome per record.
 */
import type { z } from "zod";
import type { DestinationConfig } from "../config/index.js";
import {
  AuthError,
  CancelledError,
  type FailureCode,
  FatalError,
  RetryableError,
} from "../errors.js";
import { type BatchItem, batchRecords, subscriberJson } from "./batching.js";
import { answerIsClean, bodyExcerpt, classifyBatchResult, failBatch } from "./classify.js";
import type { Clock } from "./clock.js";
import { AdaptiveRateLimiter, type RateLimiterOptions } from "./rate-limiter.js";
import { type RetryPolicy, Transport, type TransportEvents } from "./transport.js";
import type { BatchResult, DeliveryRecord, Operation } from "./types.js";
import { mapWindow } from "./window.js";
import {
  CreateListResponse,
  DATA_CENTER_HOSTS,
  GetListsResponse,
  type ListDetails,
  type ProjectType,
  UserBulkUpdateListResponse,
} from "./wire.js";

export interface IterableClientOptions {
  apiKey: string;
  /** Scheme and host (and optional path prefix) of the API. */
  baseUrl: string;
  projectType: ProjectType;
  /** Subscribers per request (default 1,000). */
  batchSize?: number;
  /** Bytes per request body (default 4,000,000). */
  maxBatchBytes?: number;
  /** Batches in flight at once (default 4). */
  concurrency?: number;
  /** Cap of the adaptive rate limit of subscribe and unsubscribe; unset means no cap. */
  maxRequestsPerSecond?: number;
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  events?: TransportEvents;
  /** Tuning of the adaptive rate limit beyond its cap. */
  rateLimit?: Omit<RateLimiterOptions, "maxRequestsPerSecond" | "clock">;
  clock?: Clock;
  random?: () => number;
}

export type ClientExtras = Pick<
  IterableClientOptions,
  "retry" | "events" | "rateLimit" | "clock" | "random"
>;

export interface DeliveryOptions {
  signal?: AbortSignal;
}

export interface SubscribeOptions extends DeliveryOptions {
  /** Only add users that already exist; respected by userId and hybrid projects only. */
  updateExistingUsersOnly?: boolean;
}

/**
 * Subscribers whose JSON the caller already built (the warehouse builds it:
 * src/planner/bulk.ts), so that a batch costs one string instead of one object per subscriber.
 */
export interface SubscriberBodies<T> {
  /** the subscribers' JSON objects, comma-separated, without the enclosing brackets: text, or
   *  its UTF-8 bytes (sent as they are, with no string in between); with `whole`, the request
   *  body itself */
  json: string | Uint8Array;
  /** `json` is already the whole request body: subscribeBodyParts() (unsubscribeBodyParts() for
   *  unsubscribeBodies) around the subscribers, so that it is sent without being copied */
  whole?: boolean;
  count: number;
  /** the caller's name for the batch, handed back with its result */
  tag: T;
  /** The same subscribers as records, keyed as the caller wants outcomes keyed. Read only when
   *  the answer names failures or the batch cannot be sent as built (over the byte limit). */
  records: () => Promise<DeliveryRecord[]>;
}

/** `result` null: Iterable took every subscriber of the batch (no outcome objects built). */
export interface BodiesResult<T> {
  tag: T;
  count: number;
  result: BatchResult | null;
}

/**
 * What a subscribe request of subscribeBodies holds around the subscribers' JSON: the body is
 * `head` + subscribers + `tail`. A caller that builds whole bodies (SubscriberBodies.whole) uses
 * exactly these; updateExistingUsersOnly as the request sends it (never for email projects).
 */
export function subscribeBodyParts(
  listId: number,
  updateExistingUsersOnly: boolean,
): { head: string; tail: string } {
  return bodyParts(subscribeEnvelope(listId, updateExistingUsersOnly));
}

/** What an unsubscribe request of unsubscribeBodies holds around the
 *  subscribers' JSON (see subscribeBodyParts). */
export function unsubscribeBodyParts(listId: number): { head: string; tail: string } {
  return bodyParts(unsubscribeEnvelope(listId));
}

function subscribeEnvelope(listId: number, updateExistingUsersOnly: boolean) {
  return updateExistingUsersOnly ? { listId, updateExistingUsersOnly: true } : { listId };
}

/** Removes from the list only: never a channel-wide unsubscribe. The spec says
 *  channelUnsubscribe defaults to false, but a mature integration reports that Iterable treats a
 *  missing value as true, a global unsubscribe (NOTES.md, Unsubscribe). */
function unsubscribeEnvelope(listId: number) {
  return { listId, channelUnsubscribe: false };
}

function bodyParts(envelope: Record<string, unknown>): { head: string; tail: string } {
  return { head: `${JSON.stringify(envelope).slice(0, -1)},"subscribers":[`, tail: "]}" };
}

/** Bytes of a request envelope around the subscribers, listId included (at most 20 digits). */
const ENVELOPE_BYTES = 100;

export class IterableClient {
  readonly projectType: ProjectType;
  private readonly transport: Transport;
  /** One limiter for subscribe and unsubscribe: Iterable limits per project, not per request. */
  private readonly bulkLimiter: AdaptiveRateLimiter;
  private readonly batchSize: number;
  private readonly maxBatchBytes: number;
  private readonly concurrency: number;

  constructor(opts: IterableClientOptions) {
    this.projectType = opts.projectType;
    this.batchSize = opts.batchSize ?? 1000;
    this.maxBatchBytes = opts.maxBatchBytes ?? 4_000_000;
    this.concurrency = Math.max(1, opts.concurrency ?? 4);
    this.transport = new Transport({
      baseUrl: opts.baseUrl,
      apiKey: opts.apiKey,
      timeoutMs: opts.timeoutMs,
      // One socket per batch in flight, plus one for list calls made meanwhile.
      connections: this.concurrency + 1,
      retry: opts.retry,
      events: opts.events,
      clock: opts.clock,
      random: opts.random,
    });
    this.bulkLimiter = new AdaptiveRateLimiter({
      ...opts.rateLimit,
      maxRequestsPerSecond: opts.maxRequestsPerSecond,
      clock: opts.clock,
    });
  }

  static fromDestination(dest: DestinationConfig, extras: ClientExtras = {}): IterableClient {
    return new IterableClient({
      apiKey: dest.apiKey,
      baseUrl: dest.baseUrl ?? DATA_CENTER_HOSTS[dest.dataCenter],
      projectType: dest.projectType,
      batchSize: dest.batchSize,
      maxBatchBytes: dest.maxBatchBytes,
      concurrency: dest.concurrency,
      maxRequestsPerSecond: dest.maxRequestsPerSecond,
      timeoutMs: dest.timeoutMs,
      ...extras,
    });
  }

  /** Requests per second the adaptive limit currently allows subscribe and unsubscribe. */
  get currentRate(): number {
    return this.bulkLimiter.rate;
  }

  async getLists(signal?: AbortSignal): Promise<ListDetails[]> {
    const res = await this.transport.send({ method: "GET", path: "/api/lists", signal });
    return parseAnswer(res.text, GetListsResponse, "GET /api/lists").lists;
  }

  /** Creates a static list. Iterable accepts duplicate names: look the name up first. */
  async createList(name: string, description?: string, signal?: AbortSignal): Promise<number> {
    const res = await this.transport.send({
      method: "POST",
      path: "/api/lists",
      json: description === undefined ? { name } : { name, description },
      signal,
      // A retried create after a lost answer could make a second list with the same name.
      idempotent: false,
    });
    return parseAnswer(res.text, CreateListResponse, "POST /api/lists").listId;
  }

  async deleteList(listId: number, signal?: AbortSignal): Promise<void> {
    await this.transport.send({ method: "DELETE", path: `/api/lists/${listId}`, signal });
  }

  /** Members' identifiers: emails, or userIds where `preferUserId` and the user has one.
   *  Iterable answers text/plain, one identifier a line; 5 requests a minute. */
  async getListUsers(
    listId: number,
    opts: { preferUserId?: boolean; signal?: AbortSignal } = {},
  ): Promise<string[]> {
    const res = await this.transport.send({
      method: "GET",
      path: "/api/lists/getUsers",
      query: { listId, preferUserId: opts.preferUserId },
      signal: opts.signal,
    });
    return res.text
      .split(/\r?\n/)
      .map((line) => line.trim())
      .filter((line) => line.length > 0);
  }

  /** Iterable answers the count as a plain string. */
  async getListSize(listId: number, signal?: AbortSignal): Promise<number> {
    const res = await this.transport.send({
      method: "GET",
      path: `/api/lists/${listId}/size`,
      signal,
    });
    const text = res.text.trim().replace(/^"(.*)"$/, "$1");
    if (!/^\d+$/.test(text)) {
      throw new FatalError(
        `Iterable's answer to GET /api/lists/${listId}/size is not a count: ${bodyExcerpt(res.text)}`,
        "server_error",
        res.status,
      );
    }
    return Number(text);
  }

  /**
   * Subscribes the records to the list, `concurrency` batches at a time, yielding each batch's
   * outcomes as it completes. Throws (ending the iteration) only for what stops the whole run:
   * AuthError, FatalError `list_not_found`, CancelledError. Everything else is a failed outcome.
   */
  subscribe(
    listId: number,
    records: AsyncIterable<DeliveryRecord> | Iterable<DeliveryRecord>,
    opts: SubscribeOptions = {},
  ): AsyncIterable<BatchResult> {
    // Email-based projects ignore updateExistingUsersOnly (NOTES.md); sending it there would
    // suggest an effect it does not have.
    const updateOnly = opts.updateExistingUsersOnly === true && this.projectType !== "email";
    return this.deliver(
      "subscribe",
      subscribeEnvelope(listId, updateOnly),
      records,
      updateOnly,
      opts.signal,
    );
  }

  /** Removes the records from the list only: never a channel-wide unsubscribe. */
  unsubscribe(
    listId: number,
    records: AsyncIterable<DeliveryRecord> | Iterable<DeliveryRecord>,
    opts: DeliveryOptions = {},
  ): AsyncIterable<BatchResult> {
    return this.deliver("unsubscribe", unsubscribeEnvelope(listId), records, false, opts.signal);
  }

  /**
   * Subscribers per request for pre-built bodies (subscribeBodies) whose subscribers take at most
   * `maxSubscriberBytes` of JSON each: the batch size, or fewer when the byte limit needs it.
   */
  bodyBatchRows(maxSubscriberBytes: number): number {
    const fit = Math.floor((this.maxBatchBytes - ENVELOPE_BYTES) / (maxSubscriberBytes + 1));
    return Math.max(1, Math.min(this.batchSize, fit));
  }

  /**
   * subscribe() for batches whose JSON the caller built: the same requests, window, rate limit,
   * retries and classification, without a record object per subscriber unless the answer names
   * failures. A batch over the byte limit is sent as records, cut to size as subscribe() does.
   */
  subscribeBodies<T>(
    listId: number,
    batches: AsyncIterable<SubscriberBodies<T>>,
    opts: SubscribeOptions = {},
  ): AsyncIterable<BodiesResult<T>> {
    const updateOnly = opts.updateExistingUsersOnly === true && this.projectType !== "email";
    const envelope = subscribeEnvelope(listId, updateOnly);
    return this.sendBodies("subscribe", envelope, batches, updateOnly, opts.signal);
  }

  /** unsubscribe() for batches whose JSON the caller built (see subscribeBodies); whole bodies
   *  open with unsubscribeBodyParts(). */
  unsubscribeBodies<T>(
    listId: number,
    batches: AsyncIterable<SubscriberBodies<T>>,
    opts: DeliveryOptions = {},
  ): AsyncIterable<BodiesResult<T>> {
    return this.sendBodies("unsubscribe", unsubscribeEnvelope(listId), batches, false, opts.signal);
  }

  private sendBodies<T>(
    op: Operation,
    envelope: Record<string, unknown>,
    batches: AsyncIterable<SubscriberBodies<T>>,
    updateOnly: boolean,
    signal: AbortSignal | undefined,
  ): AsyncIterable<BodiesResult<T>> {
    const { head, tail } = bodyParts(envelope);
    const headBytes = Buffer.from(head);
    const tailBytes = Buffer.from(tail);
    return mapWindow(
      batches,
      this.concurrency,
      async (batch, itemSignal): Promise<BodiesResult<T>> => {
        const body = batch.whole
          ? wholeBody(op, batch.json, headBytes)
          : typeof batch.json === "string"
            ? Buffer.from(`${head}${batch.json}${tail}`)
            : Buffer.concat([headBytes, batch.json, tailBytes]);
        const { tag, count } = batch;
        if (body.length > this.maxBatchBytes) {
          const outcomes: BatchResult["outcomes"] = [];
          const warnings: string[] = [];
          for await (const item of this.batches(op, envelope, await batch.records())) {
            const r = await this.sendItem(op, envelope, item, updateOnly, itemSignal);
            outcomes.push(...r.outcomes);
            warnings.push(...r.warnings);
          }
          return { tag, count, result: { op, outcomes, warnings } };
        }
        const result = await this.post(op, { body }, batch.records, updateOnly, itemSignal);
        return { tag, count, result };
      },
      signal,
    );
  }

  async close(): Promise<void> {
    await this.transport.close();
  }

  private batches(
    _op: Operation,
    envelope: Record<string, unknown>,
    records: AsyncIterable<DeliveryRecord> | Iterable<DeliveryRecord>,
  ): AsyncIterable<BatchItem> {
    const envelopeBytes = Buffer.byteLength(JSON.stringify({ ...envelope, subscribers: [] }));
    return batchRecords(records, {
      maxCount: this.batchSize,
      maxBytes: this.maxBatchBytes,
      envelopeBytes,
    });
  }

  private deliver(
    op: Operation,
    envelope: Record<string, unknown>,
    records: AsyncIterable<DeliveryRecord> | Iterable<DeliveryRecord>,
    updateExistingUsersOnly: boolean,
    signal: AbortSignal | undefined,
  ): AsyncIterable<BatchResult> {
    return mapWindow(
      this.batches(op, envelope, records),
      this.concurrency,
      (item, itemSignal) => this.sendItem(op, envelope, item, updateExistingUsersOnly, itemSignal),
      signal,
    );
  }

  private async sendItem(
    op: Operation,
    envelope: Record<string, unknown>,
    item: BatchItem,
    updateExistingUsersOnly: boolean,
    signal: AbortSignal,
  ): Promise<BatchResult> {
    if (item.kind === "rejected") {
      return {
        op,
        outcomes: failBatch(op, [item.record], item.code, item.message, false),
        warnings: [],
      };
    }
    const sent = item.records;
    const json = { ...envelope, subscribers: sent.map(subscriberJson) };
    const result = await this.post(op, { json }, async () => sent, updateExistingUsersOnly, signal);
    // null only for a clean answer: every record sent succeeded
    return result ?? classifyAll(op, sent);
  }

  /**
   * Sends one batch and classifies the answer per record. Returns null when the answer is clean
   * (every record succeeded, nothing to warn about); `records` is read only otherwise. Throws only
   * what stops the whole run: AuthError, FatalError `list_not_found`, CancelledError.
   */
  private async post(
    op: Operation,
    request: { json: unknown } | { body: string | Uint8Array },
    records: () => Promise<readonly DeliveryRecord[]>,
    updateExistingUsersOnly: boolean,
    signal: AbortSignal,
  ): Promise<BatchResult | null> {
    let failure: { code: FailureCode; message: string; retryable: boolean };
    try {
      const res = await this.transport.send({
        method: "POST",
        path: `/api/lists/${op}`,
        ...request,
        signal,
        limiter: this.bulkLimiter,
      });
      const parsed = tryParseAnswer(res.text, UserBulkUpdateListResponse, `POST /api/lists/${op}`);
      if (parsed.ok) {
        if (answerIsClean(parsed.value)) return null;
        return classifyBatchResult(op, await records(), parsed.value, { updateExistingUsersOnly });
      }
      // The batch may or may not have been applied; both operations are idempotent, so the
      // next run sending it again is safe.
      failure = { code: "server_error", message: parsed.message, retryable: true };
    } catch (err) {
      if (err instanceof AuthError || err instanceof CancelledError) throw err;
      if (err instanceof FatalError && err.code === "list_not_found") throw err;
      if (err instanceof RetryableError) {
        failure = { code: err.code, message: err.message, retryable: true };
      } else if (err instanceof FatalError) {
        failure = { code: err.code, message: err.message, retryable: false };
      } else {
        throw err;
      }
    }
    const sent = await records();
    return {
      op,
      outcomes: failBatch(op, sent, failure.code, failure.message, failure.retryable),
      warnings: [],
    };
  }
}

/** Every record of a batch succeeded. */
function classifyAll(op: Operation, sent: readonly DeliveryRecord[]): BatchResult {
  return { op, outcomes: sent.map((r) => ({ key: r.key, op, status: "succeeded" })), warnings: [] };
}

type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

function tryParseAnswer<S extends z.ZodType>(
  text: string,
  schema: S,
  what: string,
): Parsed<z.infer<S>> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, message: `Iterable's answer to ${what} is not JSON: ${bodyExcerpt(text)}` };
  }
  const result = schema.safeParse(json);
  if (result.success) return { ok: true, value: result.data };
  const issue = result.error.issues[0];
  const where = issue && issue.path.length > 0 ? issue.path.join(".") : "body";
  return {
    ok: false,
    message: `Iterable's answer to ${what} is not what the API documents (${where}: ${issue?.message ?? "invalid"}): ${bodyExcerpt(text)}`,
  };
}

function parseAnswer<S extends z.ZodType>(text: string, schema: S, what: string): z.infer<S> {
  const parsed = tryParseAnswer(text, schema, what);
  if (!parsed.ok) throw new FatalError(parsed.message, "server_error", 200);
  return parsed.value;
}

/** A whole body as sent (SubscriberBodies.whole), checked to open with this request's envelope:
 *  a body built for another list or setting is a caller's mistake, never sent. */
function wholeBody(op: Operation, json: string | Uint8Array, head: Buffer): Uint8Array {
  const body = typeof json === "string" ? Buffer.from(json) : json;
  const opens = body.length >= head.length && head.equals(body.subarray(0, head.length));
  if (!opens) throw new TypeError(`a whole ${op} body does not open with its request's envelope`);
  return body;
}
