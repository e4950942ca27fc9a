/**
 * One run of one sync: read -> validate -> plan -> deliver -> classify -> commit.
 *
 * The baseline is the last confirmed success: the next snapshot is built from the outcomes
 * Iterable confirmed, after delivery, and only registering it (commitSnapshot) makes it the
 * baseline. A crash anywhere before that leaves the previous snapshot, so the next run redoes the
 * work (subscribe and unsubscribe are idempotent): at-least-once, nothing lost.
 */
import { createHash } from "node:crypto";
import type { ResolvedSync } from "../config/index.js";
import { destinationBaseUrl } from "../config/index.js";
import {
  AudienceSyncError,
  CancelledError,
  ConfigError,
  type FailureCode,
  FatalError,
  LockedError,
  redact,
} from "../errors.js";
import { validateRow } from "../identity/rules.js";
import type { BatchResult, DeliveryRecord, Operation } from "../iterable/types.js";
import type { ProjectType } from "../iterable/wire.js";
import {
  buildSnapshot,
  createOutcomesTable,
  dropWorkTables,
  duplicateRows,
  invalidRows,
  type Plan,
  type PlanRecord,
  planRecords,
  preparePlan,
} from "../planner/planner.js";
import type { Source } from "../sources/source.js";
import { modelSql } from "../sources/source.js";
import {
  appendLogsFromOutcomes,
  applyRetention,
  commitSnapshot,
  ensureState,
  finishRun,
  getMetadata,
  insertRun,
  nextRunId,
  type RunCounts,
  type RunStatus,
} from "../state/store.js";
import { type ListApi, resolveList } from "./lists.js";
import { OutcomeWriter } from "./outcomes.js";

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
}

export interface Progress {
  phase: "plan" | "unsubscribe" | "subscribe" | "commit" | "done";
  /** records planned for the current phase */
  total: number;
  done: number;
  failed: number;
}

export interface RunOptions {
  fullResync?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
  /** Called once the run has its id (its sync_runs row exists), before any record is sent. */
  onRunId?: (id: number) => void;
}

export interface RunReport {
  sync: string;
  runId: number | null;
  status: Exclude<RunStatus, "running">;
  list: { id: number; name: string; created: boolean } | null;
  firstRun: boolean;
  fullResync: boolean;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  rowsRead: number;
  invalidRows: number;
  duplicateRows: number;
  members: number;
  planned: {
    subscribe: number;
    unsubscribe: number;
    skippedUnsubscribe: number;
    unchanged: number;
  };
  succeeded: Record<Operation, number>;
  failed: Record<Operation, number>;
  warnings: number;
  failuresByCode: Partial<Record<FailureCode, number>>;
  sampleFailures: {
    op: Operation;
    key: string;
    email: string | null;
    userId: string | null;
    code: string | null;
    message: string | null;
  }[];
  notes: string[];
  error: { code: string; message: string } | null;
}

/** A report with nothing done yet, status `failed` until the run says otherwise. */
export function blankReport(sync: string, fullResync: boolean, started = new Date()): RunReport {
  return {
    sync,
    runId: null,
    status: "failed",
    list: null,
    firstRun: false,
    fullResync,
    startedAt: started.toISOString(),
    finishedAt: started.toISOString(),
    durationMs: 0,
    rowsRead: 0,
    invalidRows: 0,
    duplicateRows: 0,
    members: 0,
    planned: { subscribe: 0, unsubscribe: 0, skippedUnsubscribe: 0, unchanged: 0 },
    succeeded: { subscribe: 0, unsubscribe: 0 },
    failed: { subscribe: 0, unsubscribe: 0 },
    warnings: 0,
    failuresByCode: {},
    sampleFailures: [],
    notes: [],
    error: null,
  };
}

/** The code of an error for reports: its failure code when it has one. */
export function errorCode(err: unknown): string {
  if (err instanceof ConfigError) return "config_error";
  return err instanceof AudienceSyncError && "code" in err
    ? String((err as { code: unknown }).code)
    : "run_failed";
}

/** The report runSync attached to the error it threw, when the run had started. */
export function reportOf(err: unknown): RunReport | undefined {
  return err instanceof Error ? (err as Error & { report?: RunReport }).report : undefined;
}

/** The report of a run that failed before runSync could make one (source down, lock held). */
export function failedReport(
  sync: string,
  fullResync: boolean,
  err: unknown,
  secrets: string[] = [],
): RunReport {
  const report = blankReport(sync, fullResync);
  report.error = {
    code: errorCode(err),
    message: redact(err instanceof Error ? err.message : String(err), ...secrets),
  };
  return report;
}

/** Identifies what the snapshot was made against: a change of list, identifiers or project
 *  makes the next run a first run for the new list. */
export function configFingerprint(resolved: ResolvedSync, listId: number): string {
  const { sync, destination } = resolved;
  const basis = {
    listId,
    host: destinationBaseUrl(destination),
    projectType: destination.projectType,
    email: sync.identifiers.email ?? null,
    userId: sync.identifiers.userId ?? null,
  };
  return createHash("sha256").update(JSON.stringify(basis)).digest("hex").slice(0, 16);
}

/** The committed snapshot to diff against, or null (and why) when the run must subscribe everyone. */
export async function chooseBaseline(
  source: Source,
  syncName: string,
  fingerprint: string,
  fullResync: boolean,
): Promise<{ baseline: string | null; resendAll: boolean; note: string | null }> {
  const tail =
    "every valid row is subscribed; members of the list that are not in the model are not unsubscribed";
  const fresh = (note: string) => ({ baseline: null, resendAll: false, note });
  const meta = await getMetadata(source, syncName);
  if (!meta?.snapshotTable) return fresh(`${fullResync ? "full resync" : "first run"}: ${tail}`);
  if (meta.fingerprint !== fingerprint) {
    return fresh(
      "the list or the identifier mapping changed since the last run: every valid row is subscribed to the new list; the previous list is left as it was",
    );
  }
  if (!(await source.tableExists(source.stateSchema, meta.snapshotTable))) {
    return fresh(
      `the last snapshot (${meta.snapshotTable}) is missing from the warehouse: ${tail}`,
    );
  }
  if (fullResync) {
    // The snapshot still names people this sync subscribed (and unsubscribes that wait for a
    // retry): a full resync sends every member again but keeps unsubscribing those.
    return {
      baseline: meta.snapshotTable,
      resendAll: true,
      note: "full resync: every valid row is subscribed again; rows removed since the last run are unsubscribed as usual",
    };
  }
  return { baseline: meta.snapshotTable, resendAll: false, note: null };
}

// One run per sync at a time inside this process; across processes, the source's lock.
const runningHere = new Set<string>();

export function lockName(resolved: ResolvedSync): string {
  return `audience-sync:${resolved.name}`;
}

export async function acquireLock(
  source: Source,
  resolved: ResolvedSync,
): Promise<() => Promise<void>> {
  const key = `${JSON.stringify(resolved.source)}:${resolved.name}`;
  if (runningHere.has(key)) {
    throw new LockedError(`sync "${resolved.name}" is already running in this process`);
  }
  const lock = await source.tryLock(lockName(resolved));
  if (!lock) {
    throw new LockedError(
      `sync "${resolved.name}" is already running (another process holds its lock in the warehouse); wait for it to finish`,
    );
  }
  runningHere.add(key);
  return async () => {
    runningHere.delete(key);
    await lock.release();
  };
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

interface Deps {
  api: DeliveryApi;
  source: Source;
}

/**
 * Runs one sync. Record failures never stop the run (they are counted and logged); fatal errors
 * (bad key, list gone, source down) end it as `failed` with the previous snapshot kept.
 */
export async function runSync(
  resolved: ResolvedSync,
  deps: Deps,
  opts: RunOptions = {},
): Promise<RunReport> {
  const { api, source } = deps;
  const { sync, destination, name } = resolved;
  const started = new Date();
  const projectType: ProjectType = destination.projectType;
  const report = blankReport(name, opts.fullResync === true, started);
  const progress = (p: Progress) => opts.onProgress?.(p);
  const finish = (status: RunReport["status"]) => {
    const end = new Date();
    report.status = status;
    report.finishedAt = end.toISOString();
    report.durationMs = end.getTime() - started.getTime();
    return report;
  };

  await ensureState(source);
  const release = await acquireLock(source, resolved);
  let plan: Plan | null = null;
  let counts: RunCounts | null = null;
  try {
    progress({ phase: "plan", total: 0, done: 0, failed: 0 });
    const list = await resolveList(api, source, name, sync.list);
    report.list = list;
    const fingerprint = configFingerprint(resolved, list.id);
    const chosen = await chooseBaseline(source, name, fingerprint, report.fullResync);
    const { baseline, resendAll } = chosen;
    if (chosen.note) report.notes.push(chosen.note);
    report.firstRun = baseline === null;

    const runId = await nextRunId(source, name);
    report.runId = runId;
    await insertRun(source, { sync: name, runId, fullResync: report.fullResync, listId: list.id });
    opts.onRunId?.(runId);

    plan = await preparePlan({
      source,
      syncName: name,
      projectType,
      modelSql: modelSql(sync, source.dialect),
      identifiers: sync.identifiers,
      runId,
      baseline,
      resendAll,
      signal: opts.signal,
    });
    report.rowsRead = plan.rowsRead;
    report.invalidRows = plan.invalidRows;
    report.duplicateRows = plan.duplicateRows;
    report.members = plan.members;
    report.planned = {
      subscribe: plan.subscribe.added + plan.subscribe.changed,
      unsubscribe: plan.unsubscribe,
      skippedUnsubscribe: plan.skippedUnsubscribe,
      unchanged: plan.unchanged,
    };

    await createOutcomesTable(source, plan);
    const writer = new OutcomeWriter(
      source,
      plan.tables.outcomes,
      sync.observability.retryFailedRecords,
      [destination.apiKey],
    );
    let cancelled = false;
    // A fatal error during delivery (key revoked, list deleted) still commits what Iterable
    // confirmed before it: those changes are applied in Iterable, and a baseline without them
    // would lose them if the model changed back before the next run.
    let fatal: unknown = null;
    const answerWarnings = new Set<string>();
    const refused = { count: 0 };
    try {
      await recordRowFailures(source, plan, projectType, writer);
      // Unsubscribes finish before subscribes start: an identity change can name the same
      // Iterable person on both sides, and the subscribe must be the last word.
      const ctx = {
        api,
        source,
        plan,
        projectType,
        writer,
        listId: list.id,
        resolved,
        opts,
        answerWarnings,
        refused,
      };
      await deliver("unsubscribe", ctx);
      await deliver("subscribe", ctx);
    } catch (err) {
      if (err instanceof CancelledError || opts.signal?.aborted) {
        cancelled = true;
        report.notes.push(
          "cancelled: sending stopped; what Iterable confirmed was committed, the rest is sent by the next run",
        );
      } else {
        fatal = err;
        report.notes.push(
          "the run stopped while sending; what Iterable confirmed before that was committed, the rest is sent by the next run",
        );
      }
    }
    await writer.flush();
    for (const w of answerWarnings) report.notes.push(`Iterable's answer: ${w}`);
    report.invalidRows = plan.invalidRows + refused.count;
    report.members = plan.members - refused.count;

    progress({ phase: "commit", total: 0, done: 0, failed: 0 });
    if (sync.observability.retainSyncLogs) {
      await appendLogsFromOutcomes(source, name, runId, plan.tables.outcomes);
    }
    await buildSnapshot(source, plan);
    await commitSnapshot(source, name, runId, plan.tables.snap, fingerprint);
    // Committed: from here on the baseline is this run's snapshot, whatever happens below.

    const t = writer.tally;
    report.succeeded = t.succeeded;
    report.failed = t.failed;
    report.warnings = t.warnings;
    report.failuresByCode = t.byCode;
    report.sampleFailures = t.samples.map((s) => ({
      op: s.op,
      key: s.key,
      email: s.email,
      userId: s.userId,
      code: s.code,
      message: s.message,
    }));
    counts = runCounts(report, list.id, plan);
    if (fatal !== null) throw fatal;
    const anyFailed = t.failed.subscribe + t.failed.unsubscribe > 0;
    const status: RunReport["status"] = cancelled
      ? "cancelled"
      : anyFailed
        ? "completed_with_failures"
        : "succeeded";
    try {
      await finishRun(source, name, runId, status, counts, null);
      await cleanUp(source, resolved, plan);
    } catch (err) {
      report.notes.push(
        `the run was committed, but its bookkeeping afterwards failed (the next run repairs it): ${redact(err instanceof Error ? err.message : String(err), destination.apiKey)}`,
      );
    }
    progress({ phase: "done", total: 0, done: 0, failed: 0 });
    return finish(status);
  } catch (err) {
    const message = redact(err instanceof Error ? err.message : String(err), destination.apiKey);
    report.error = { code: errorCode(err), message };
    const status = err instanceof CancelledError ? "cancelled" : "failed";
    if (report.runId !== null) {
      try {
        await finishRun(
          source,
          name,
          report.runId,
          status,
          counts ?? (plan ? runCounts(report, report.list?.id ?? null, plan) : null),
          message,
        );
        if (plan) await dropWorkTables(source, plan);
      } catch {
        // the source itself may be what failed; the run row then stays 'running' and the next
        // run's retention drops the work tables
      }
    }
    finish(status);
    throw Object.assign(err instanceof Error ? err : new Error(message), { report });
  } finally {
    await release();
  }
}

function runCounts(report: RunReport, listId: number | null, plan: Plan): RunCounts {
  return {
    listId,
    rowsRead: plan.rowsRead,
    invalidRows: report.invalidRows,
    plannedSubscribe: report.planned.subscribe,
    plannedUnsubscribe: report.planned.unsubscribe,
    succeededSubscribe: report.succeeded.subscribe,
    succeededUnsubscribe: report.succeeded.unsubscribe,
    failedSubscribe: report.failed.subscribe,
    failedUnsubscribe: report.failed.unsubscribe,
    skippedUnsubscribe: report.planned.skippedUnsubscribe,
    unchanged: report.planned.unchanged,
    failuresByCode: report.failuresByCode as Record<string, number>,
  };
}

async function cleanUp(source: Source, resolved: ResolvedSync, plan: Plan): Promise<void> {
  await dropWorkTables(source, plan);
  await applyRetention(source, resolved.name, {
    logDays: resolved.sync.observability.syncLogRetentionDays,
    keepSnapshots: resolved.sync.observability.snapshotRetention,
  });
}

/** Rows without a usable identity and rows that lost a duplicate conflict: failed records. */
async function recordRowFailures(
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

interface DeliverCtx {
  api: DeliveryApi;
  source: Source;
  plan: Plan;
  projectType: ProjectType;
  writer: OutcomeWriter;
  listId: number;
  resolved: ResolvedSync;
  opts: RunOptions;
  /** what Iterable's answers said that maps onto no record (e.g. a failCount larger than the
   *  names listed), collected for the report */
  answerWarnings: Set<string>;
  /** subscribe rows refused by validation in TypeScript (emails are judged outside SQL) */
  refused: { count: number };
}

async function deliver(op: Operation, ctx: DeliverCtx): Promise<void> {
  const {
    api,
    source,
    plan,
    projectType,
    writer,
    listId,
    resolved,
    opts,
    answerWarnings,
    refused,
  } = ctx;
  const total =
    op === "subscribe" ? plan.subscribe.added + plan.subscribe.changed : plan.unsubscribe;
  if (total === 0) return;
  // Identifiers of each record in flight, to log the outcome with them; bounded by the client's
  // in-flight window, since records are pulled from the warehouse only as batches complete.
  const pending = new Map<string, PlanRecord>();
  const warnings = new Map<string, { code: FailureCode; message: string }>();
  let done = 0;
  let failed = 0;
  const tick = () => opts.onProgress?.({ phase: op, total, done, failed });
  tick();

  const invalidBeforeSend: { rec: PlanRecord; code: FailureCode; message: string }[] = [];
  // A plain iterator rather than an async generator: this runs once per record, and a generator's
  // yield costs several promise turns where `next` here costs one.
  const batches = planRecords(source, plan, op)[Symbol.asyncIterator]();
  let batch: PlanRecord[] = [];
  let at = 0;
  const readRecord = async (): Promise<IteratorResult<DeliveryRecord>> => {
    for (;;) {
      while (at < batch.length) {
        const rec = batch[at++] as PlanRecord;
        opts.signal?.throwIfAborted();
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
        failed++;
        refused.count++;
      }
      done++;
    }
  };

  const stream =
    op === "subscribe"
      ? api.subscribe(listId, records, {
          updateExistingUsersOnly: projectType !== "email" && resolved.sync.updateExistingUsersOnly,
          ...(opts.signal ? { signal: opts.signal } : {}),
        })
      : api.unsubscribe(listId, records, opts.signal ? { signal: opts.signal } : {});
  try {
    for await (const result of stream) {
      for (const w of result.warnings) if (answerWarnings.size < 20) answerWarnings.add(w);
      for (const o of result.outcomes) {
        const rec = pending.get(o.key);
        pending.delete(o.key);
        let w: { code: FailureCode; message: string } | undefined;
        if (warnings.size > 0) {
          w = warnings.get(o.key);
          warnings.delete(o.key);
        }
        let wait: Promise<void> | undefined;
        if (o.status === "succeeded" && w === undefined) {
          wait = writer.addSucceeded(op, o.key, rec?.email ?? null, rec?.userId ?? null);
        } else if (o.status === "succeeded") {
          wait = writer.add({
            key: o.key,
            op,
            email: rec?.email ?? null,
            userId: rec?.userId ?? null,
            status: "succeeded",
            code: w?.code ?? null,
            message: w ? `warning: ${w.message}; sent without it` : null,
          });
        } else {
          // notFound on unsubscribe is success, decided by the classifier; a forgotten user on
          // unsubscribe is no longer a member either.
          const forgotten = o.code === "forgotten_user";
          wait = writer.add({
            key: o.key,
            op,
            email: rec?.email ?? null,
            userId: rec?.userId ?? null,
            status: "failed",
            code: o.code,
            message: o.message,
            permanent: forgotten,
          });
          failed++;
        }
        if (wait) await wait;
        done++;
      }
      await flushInvalid();
      tick();
      if (opts.signal?.aborted) throw new CancelledError("the run was cancelled");
    }
    await flushInvalid();
    tick();
  } catch (err) {
    await flushInvalid();
    if (opts.signal?.aborted && !(err instanceof FatalError))
      throw new CancelledError("the run was cancelled", { cause: err });
    throw err;
  }
}
