/**
 * Delivery of one run's plan: the records of each operation streamed from the warehouse to
 * Iterable, and every outcome written to the run's outcomes table.
 *
 * Records go two ways. Where the warehouse can build request bodies (src/planner/bulk.ts), the
 * subscribes and unsubscribes whose identifiers it proves valid leave it as ready JSON, one
 * string per request, and the outcomes of batches Iterable took whole are written back by one
 * statement: no object per record in this process. Every other record (identifiers that need
 * src/identity's verdict or carry a warning, and every record on other warehouses) goes record by
 * record: validated here, batched by the client, one outcome each.
 */
import { CancelledError, type FailureCode, FatalError } from "../errors.js";
import { validateRow } from "../identity/rules.js";
import {
  type BodiesResult,
  type SubscriberBodies,
  subscribeBodyParts,
  unsubscribeBodyParts,
} from "../iterable/client.js";
import type { BatchResult, DeliveryRecord, Operation } from "../iterable/types.js";
import type { ProjectType } from "../iterable/wire.js";
import {
  type BodySpec,
  batchRuns,
  bodiesSql,
  bodyRecordsSql,
  buildsBodies,
  builtOutcomesSql,
  insertBuiltOutcomesSql,
  lastRowSql,
  MAX_SUBSCRIBER_BYTES,
} from "../planner/bulk.js";
import {
  duplicateRows,
  invalidRows,
  type Plan,
  type PlanRecord,
  planRecords,
} from "../planner/planner.js";
import type { Source } from "../sources/source.js";
import type { AheadQueue } from "../sources/speculate.js";
import { appendLogs } from "../state/store.js";
import type { ListApi } from "./lists.js";
import type { OutcomeWriter } from "./outcomes.js";
import type { Progress } from "./run.js";

/** What delivery needs from the Iterable client (src/iterable/client.ts satisfies it). */
export interface DeliveryApi extends ListApi {
  subscribe(
    listId: number,
    records: AsyncIterable<DeliveryRecord> | Iterable<DeliveryRecord>,
    opts?: { updateExistingUsersOnly?: boolean; signal?: AbortSignal },
  ): AsyncIterable<BatchResult>;
  unsubscribe(
    listId: number,
    records: AsyncIterable<DeliveryRecord> | Iterable<DeliveryRecord>,
    opts?: { signal?: AbortSignal },
  ): AsyncIterable<BatchResult>;
  /** Subscribes of pre-built JSON; without it every subscribe goes record by record. */
  subscribeBodies?<T>(
    listId: number,
    batches: AsyncIterable<SubscriberBodies<T>>,
    opts?: { updateExistingUsersOnly?: boolean; signal?: AbortSignal },
  ): AsyncIterable<BodiesResult<T>>;
  /** Unsubscribes of pre-built JSON; without it every unsubscribe goes record by record. */
  unsubscribeBodies?<T>(
    listId: number,
    batches: AsyncIterable<SubscriberBodies<T>>,
    opts?: { signal?: AbortSignal },
  ): AsyncIterable<BodiesResult<T>>;
  /** Subscribers per pre-built request, for subscribers of at most this many JSON bytes. */
  bodyBatchRows?(maxSubscriberBytes: number): number;
}

export interface DeliverCtx {
  api: DeliveryApi;
  source: Source;
  plan: Plan;
  projectType: ProjectType;
  writer: OutcomeWriter;
  listId: number;
  updateExistingUsersOnly: boolean;
  signal: AbortSignal | undefined;
  onProgress: ((p: Progress) => void) | undefined;
  /** what Iterable's answers said that maps onto no record (e.g. a failCount larger than the
   *  names listed), collected for the report */
  answerWarnings: Set<string>;
  /** subscribe rows refused by validation in TypeScript (emails are judged outside SQL) */
  refused: { count: number };
  /** where the sync logs of built batches go while sending; null when logs are not kept */
  logs: { sync: string; runId: number } | null;
  /** built batches Iterable took whole (filled by delivery; see writeBuiltOutcomes) */
  built: BuiltBatches;
  /** work done ahead while sending goes on (src/sources/speculate.ts); delivery opens it once
   *  sending is under way. Null where the source does not speculate. */
  ahead: AheadQueue | null;
}

/** Built batches Iterable took whole: their numbers and how many records they hold. */
export interface BuiltBatches {
  spec: BodySpec | null;
  taken: number[];
  rows: number;
}

/**
 * Outcome rows of the built batches Iterable took whole, written by one statement per run of
 * batches. Their sync logs were written while sending: call this after the other outcomes were
 * logged (appendLogsFromOutcomes), when the snapshot needs them (buildSnapshot's `unwritten`).
 */
export async function writeBuiltOutcomes(source: Source, plan: Plan, built: BuiltBatches) {
  const { spec } = built;
  if (!spec) return;
  const d = source.dialect;
  const schema = source.stateSchema;
  for (const [first, last] of batchRuns(built.taken)) {
    await source.exec(insertBuiltOutcomesSql(d, schema, plan.tables, spec, first, last));
  }
}

/** Built batches asked of the warehouse by the first query, so that sending starts at once, and
 *  by each later one (each query costs ~25 ms beyond its rows; see bodiesSql). */
const FIRST_QUERY_BATCHES = 4;
const BATCHES_PER_QUERY = 100;
/** Queries asked before their batches are needed (about 300,000 subscribers, ~14 MB of JSON). */
const SEGMENTS_AHEAD = 3;

/**
 * Whether sending the plan's subscribes lasts long enough to hide the work done ahead (the next
 * snapshot, a copy of every member; the sync logs of the subscribes). Measured against the
 * emulator (bench/sync.ts, one thread): a member costs the snapshot ~0.7 µs, a subscribe ~1.4 µs
 * of logs and ~5 µs of sending; so at least a quarter of the members subscribed. Otherwise the
 * work starts when the run commits, on every thread.
 */
function aheadWorthIt(plan: Plan): boolean {
  return (plan.subscribe.added + plan.subscribe.changed) * 4 >= plan.members;
}

/** Progress of one operation across the ways its records go. */
interface Counter {
  op: Operation;
  total: number;
  done: number;
  failed: number;
}

function toDelivery(
  rec: PlanRecord,
  verdict: Extract<ReturnType<typeof validateRow>, { ok: true }>,
): DeliveryRecord {
  const out: DeliveryRecord = { key: rec.identity };
  if (verdict.email !== undefined) out.email = verdict.email;
  if (verdict.userId !== undefined) out.userId = verdict.userId;
  return out;
}

/** Rows without a usable identity and rows that lost a duplicate conflict: failed records. */
export async function recordRowFailures(
  source: Source,
  plan: Plan,
  projectType: ProjectType,
  writer: OutcomeWriter,
): Promise<void> {
  if (plan.invalidRows > 0) {
    for await (const batch of invalidRows(source, plan)) {
      for (const row of batch) {
        const v = validateRow(projectType, { email: row.email, userId: row.userId });
        const wait = writer.add({
          key: `row:${row.email ?? ""}|${row.userId ?? ""}`,
          op: "subscribe",
          email: row.email,
          userId: row.userId,
          status: "failed",
          code: v.ok ? "missing_identifier" : v.code,
          message: v.ok ? "the row has no usable identifier" : v.message,
        });
        if (wait) await wait;
      }
    }
  }
  if (plan.duplicateRows > 0) {
    for await (const batch of duplicateRows(source, plan)) {
      for (const row of batch) {
        const wait = writer.add({
          key: `dup:${row.identity}|${row.email ?? ""}|${row.userId ?? ""}`,
          op: "subscribe",
          email: row.email,
          userId: row.userId,
          status: "failed",
          code: "duplicate_identity",
          message: `another row has the same identity (${row.identity}) with different identifiers (email ${row.keptEmail ?? "none"}, userId ${row.keptUserId ?? "none"}); that row was kept`,
        });
        if (wait) await wait;
      }
    }
  }
}

/**
 * Delivers every planned record of one operation; throws CancelledError when the run is
 * cancelled, and what the client throws for errors that stop the run.
 */
export async function deliverOperation(op: Operation, ctx: DeliverCtx): Promise<void> {
  const { plan } = ctx;
  const total =
    op === "subscribe" ? plan.subscribe.added + plan.subscribe.changed : plan.unsubscribe;
  if (total === 0) return;
  const counter: Counter = { op, total, done: 0, failed: 0 };
  tick(ctx, counter);
  const bodies = builtWay(ctx, op);
  try {
    // built bodies first, then every record they do not carry
    if (bodies) await deliverBodies(ctx, counter, bodies);
    await deliverRecords(ctx, counter, planRecords(ctx.source, plan, op, { unbuilt: !!bodies }));
  } catch (err) {
    if (ctx.signal?.aborted && !(err instanceof FatalError)) {
      throw err instanceof CancelledError
        ? err
        : new CancelledError("the run was cancelled", { cause: err });
    }
    throw err;
  }
}

function tick(ctx: DeliverCtx, c: Counter): void {
  ctx.onProgress?.({ phase: c.op, total: c.total, done: c.done, failed: c.failed });
}

/** Built bodies of one operation: how the warehouse builds them, the envelope they open and
 *  close with, and the client's way to send them, bound to this run's list and signal. */
interface BuiltWay {
  spec: BodySpec;
  parts: { head: string; tail: string };
  send(batches: AsyncIterable<SubscriberBodies<number>>): AsyncIterable<BodiesResult<number>>;
}

/** How this run's records of `op` go in built bodies, or null when they do not (the warehouse
 *  builds none, or the client cannot send them). */
function builtWay(ctx: DeliverCtx, op: Operation): BuiltWay | null {
  const { api, listId, signal } = ctx;
  if (!buildsBodies(ctx.source.dialect) || !api.bodyBatchRows) return null;
  const spec: BodySpec = {
    op,
    projectType: ctx.projectType,
    batchRows: api.bodyBatchRows(MAX_SUBSCRIBER_BYTES),
  };
  const opts = signal ? { signal } : {};
  if (op === "unsubscribe") {
    const send = api.unsubscribeBodies?.bind(api);
    const parts = unsubscribeBodyParts(listId);
    return send ? { spec, parts, send: (b) => send(listId, b, opts) } : null;
  }
  const send = api.subscribeBodies?.bind(api);
  const updateExistingUsersOnly = ctx.updateExistingUsersOnly;
  const parts = subscribeBodyParts(listId, updateExistingUsersOnly);
  return send
    ? { spec, parts, send: (b) => send(listId, b, { ...opts, updateExistingUsersOnly }) }
    : null;
}

function text(v: unknown): string | null {
  return v === null || v === undefined ? null : String(v);
}

/**
 * Sends the batches the warehouse built. A batch Iterable took whole is only counted, and its
 * sync logs and outcome rows are written by the warehouse (also when the run stops part-way); a
 * batch whose answer names failures is read back record by record and logged like any other.
 */
async function deliverBodies(ctx: DeliverCtx, counter: Counter, way: BuiltWay): Promise<void> {
  const { source, plan } = ctx;
  const { spec, parts, send } = way;
  const d = source.dialect;
  const schema = source.stateSchema;
  const subscribes = spec.op === "subscribe";
  // Identifiers of a batch's records as the warehouse holds them: read when its answer names
  // failures, once for the client's classification and the outcome rows alike.
  type Held = { identity: string; email: string | null; userId: string | null };
  const readBack = new Map<number, Promise<Held[]>>();
  const read = (batch: number): Promise<Held[]> => {
    let rows = readBack.get(batch);
    if (!rows) {
      rows = source.query(bodyRecordsSql(d, schema, plan.tables, spec, batch)).then((found) =>
        found.map((r) => ({
          identity: String(r.identity),
          email: text(r.email),
          userId: text(r.user_id),
        })),
      );
      readBack.set(batch, rows);
    }
    return rows;
  };
  const asDelivery = (r: Held) => {
    const out: DeliveryRecord = { key: r.identity };
    if (ctx.projectType !== "userId" && r.email !== null) out.email = r.email;
    if (ctx.projectType !== "email" && r.userId !== null) out.userId = r.userId;
    return out;
  };
  const [last] = await source.query(lastRowSql(d, schema, plan.tables));
  const lastRow =
    last?.last_row === null || last?.last_row === undefined ? -1 : Number(last.last_row);
  const lastBatch = Math.floor(lastRow / spec.batchRows);
  const segment = (first: number, count: number) => {
    const rows = source.query(
      bodiesSql(d, schema, plan.tables, spec, parts, first, first + count - 1),
    );
    // asked ahead: if sending stops first, nobody awaits it, and its failure must not go unhandled
    rows.catch(() => undefined);
    return rows;
  };
  let yielded = 0;
  async function* batches(): AsyncGenerator<SubscriberBodies<number>> {
    // Segments asked ahead: the next ones are built while these are sent, enough of them to ride
    // out the work done ahead, which shares the warehouse's threads (it starts once the first
    // full segment is in).
    const asked: Promise<Record<string, unknown>[]>[] = [];
    let after = 0;
    const ask = () => {
      while (after <= lastBatch && asked.length < SEGMENTS_AHEAD) {
        const count = after === 0 ? FIRST_QUERY_BATCHES : BATCHES_PER_QUERY;
        asked.push(segment(after, count));
        after += count;
      }
    };
    ask();
    for (let n = 0; asked.length > 0; n++) {
      const rows = (await asked.shift()) as Record<string, unknown>[];
      ask();
      // A second full segment of subscribes: sending is under way; the work done ahead starts if
      // sending will last long enough to hide it (aheadWorthIt).
      if (subscribes && n === 1 && aheadWorthIt(plan)) ctx.ahead?.open();
      for (const r of rows) {
        const batch = Number(r.batch);
        yielded++;
        yield {
          json: r.body instanceof Uint8Array ? r.body : String(r.body),
          whole: true,
          count: Number(r.n),
          tag: batch,
          records: async () => (await read(batch)).map(asDelivery),
        };
      }
    }
  }
  // Built subscribes Iterable takes whole: ctx.built, whose outcome rows are written at commit,
  // and only if the snapshot needs them (writeBuiltOutcomes). Built unsubscribes: their outcome
  // rows are written when sending them ends (the snapshot always needs them), and logged with
  // the other outcomes.
  const taken: BuiltBatches = subscribes ? ctx.built : { spec, taken: [], rows: 0 };
  if (subscribes) ctx.built.spec = spec;
  const logTaken = subscribes ? logsOfBuiltSubscribes(ctx, spec, lastRow, lastBatch) : null;
  let finished = false;
  try {
    for await (const { tag, count, result } of send(batches())) {
      if (result === null) {
        ctx.writer.countSucceeded(spec.op, count);
        taken.taken.push(tag);
        taken.rows += count;
        counter.done += count;
      } else {
        const byKey = new Map((await read(tag)).map((r) => [r.identity, r]));
        readBack.delete(tag);
        await handleResult(ctx, counter, result, (key) => byKey.get(key));
      }
      tick(ctx, counter);
      if (ctx.signal?.aborted) throw new CancelledError("the run was cancelled");
    }
    finished = true;
  } finally {
    // After a stop, the outcomes and logs are written as far as they go, and the reason for the
    // stop is the error the run reports.
    const written = logTaken
      ? logTaken(finished && taken.taken.length === yielded)
      : writeBuiltOutcomes(source, plan, taken);
    await written.catch((error: unknown) => {
      if (finished) throw error;
    });
  }
}

/**
 * Sync logs of the built subscribes Iterable takes whole: written ahead, every built record as
 * succeeded, in a transaction of their own while sending goes on (speculate). Kept if every
 * batch was taken whole; otherwise thrown away, and the batches taken are logged after sending,
 * one statement per run of consecutive batches. Returns what to call when sending ends.
 */
function logsOfBuiltSubscribes(
  ctx: DeliverCtx,
  spec: BodySpec,
  lastRow: number,
  lastBatch: number,
): (allTaken: boolean) => Promise<void> {
  const { source, plan, logs } = ctx;
  const d = source.dialect;
  const schema = source.stateSchema;
  const logsAhead =
    logs && lastRow >= 0 && ctx.ahead
      ? ctx.ahead.speculate((tx) =>
          appendLogs(
            source,
            logs.sync,
            logs.runId,
            builtOutcomesSql(d, schema, plan.tables, spec, 0, lastBatch),
            tx,
          ),
        )
      : null;
  return async (allTaken: boolean) => {
    if (logsAhead && (await logsAhead.settle(allTaken))) return;
    if (!logs) return;
    for (const [first, last] of batchRuns(ctx.built.taken)) {
      const rows = builtOutcomesSql(d, schema, plan.tables, spec, first, last);
      await appendLogs(source, logs.sync, logs.runId, rows);
    }
  };
}

/** Writes the outcomes of one answer, looking each record's identifiers up by key. */
async function handleResult(
  ctx: DeliverCtx,
  counter: Counter,
  result: BatchResult,
  lookup: (key: string) => { email: string | null; userId: string | null } | undefined,
  warningOf?: (key: string) => { code: FailureCode; message: string } | undefined,
): Promise<void> {
  for (const w of result.warnings) if (ctx.answerWarnings.size < 20) ctx.answerWarnings.add(w);
  for (const o of result.outcomes) {
    const wait = ctx.writer.addOutcome(o, lookup(o.key), warningOf?.(o.key));
    if (o.status === "failed") counter.failed++;
    if (wait) await wait;
    counter.done++;
  }
}

/** Sends records one by one through the client's batching, validating each first. */
async function deliverRecords(
  ctx: DeliverCtx,
  counter: Counter,
  source: AsyncIterable<PlanRecord[]>,
): Promise<void> {
  const { api, projectType, writer, listId, signal } = ctx;
  const op = counter.op;
  // Identifiers of each record in flight, to log the outcome with them; bounded by the client's
  // in-flight window, since records are pulled from the warehouse only as batches complete.
  const pending = new Map<string, PlanRecord>();
  const warnings = new Map<string, { code: FailureCode; message: string }>();

  const invalidBeforeSend: { rec: PlanRecord; code: FailureCode; message: string }[] = [];
  // A plain iterator rather than an async generator: this runs once per record, and a generator's
  // yield costs several promise turns where `next` here costs one.
  const batches = source[Symbol.asyncIterator]();
  let batch: PlanRecord[] = [];
  let at = 0;
  const readRecord = async (): Promise<IteratorResult<DeliveryRecord>> => {
    for (;;) {
      while (at < batch.length) {
        const rec = batch[at++] as PlanRecord;
        signal?.throwIfAborted();
        const verdict = validateRow(projectType, { email: rec.email, userId: rec.userId });
        if (!verdict.ok) {
          invalidBeforeSend.push({ rec, code: verdict.code, message: verdict.message });
          continue;
        }
        const out = toDelivery(rec, verdict);
        if (verdict.warnings.length > 0 && op === "subscribe") {
          const w = verdict.warnings[0];
          if (w) warnings.set(rec.identity, w);
        }
        pending.set(rec.identity, rec);
        return { done: false, value: out };
      }
      const next = await batches.next();
      if (next.done) return { done: true, value: undefined };
      batch = next.value;
      at = 0;
    }
  };
  // A consumer whose next() throws does not call return(): the warehouse stream (a cursor, a
  // connection) is closed here instead, as a for-await loop would.
  const nextRecord = async (): Promise<IteratorResult<DeliveryRecord>> => {
    try {
      return await readRecord();
    } catch (err) {
      try {
        await batches.return?.(undefined);
      } catch {
        // closing must not hide why reading stopped
      }
      throw err;
    }
  };
  const records: AsyncIterableIterator<DeliveryRecord> = {
    [Symbol.asyncIterator]() {
      return this;
    },
    next: nextRecord,
    return: async () => {
      await batches.return?.(undefined);
      return { done: true, value: undefined };
    },
  };

  const flushInvalid = async () => {
    if (invalidBeforeSend.length === 0) return;
    for (const { rec, code, message } of invalidBeforeSend.splice(0)) {
      // An unsubscribe of a snapshot row whose identifiers are no longer valid cannot be sent;
      // nothing of it was ever subscribed under those values, so it is dropped as done.
      const wait = writer.add({
        key: rec.identity,
        op,
        email: rec.email,
        userId: rec.userId,
        status: op === "unsubscribe" ? "succeeded" : "failed",
        code,
        message,
      });
      if (wait) await wait;
      if (op === "subscribe") {
        counter.failed++;
        ctx.refused.count++;
      }
      counter.done++;
    }
  };

  const stream =
    op === "subscribe"
      ? api.subscribe(listId, records, {
          updateExistingUsersOnly: ctx.updateExistingUsersOnly,
          ...(signal ? { signal } : {}),
        })
      : api.unsubscribe(listId, records, signal ? { signal } : {});
  const take = (key: string) => {
    const rec = pending.get(key);
    pending.delete(key);
    return rec;
  };
  const warningOf =
    op === "subscribe"
      ? (key: string) => {
          if (warnings.size === 0) return undefined;
          const w = warnings.get(key);
          warnings.delete(key);
          return w;
        }
      : undefined;
  try {
    for await (const result of stream) {
      await handleResult(ctx, counter, result, take, warningOf);
      await flushInvalid();
      tick(ctx, counter);
      if (signal?.aborted) throw new CancelledError("the run was cancelled");
    }
    await flushInvalid();
    tick(ctx, counter);
  } catch (err) {
    await flushInvalid();
    throw err;
  }
}
