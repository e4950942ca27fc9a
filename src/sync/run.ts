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
  LockedError,
  redact,
} from "../errors.js";
import type { Operation } from "../iterable/types.js";
import type { ProjectType } from "../iterable/wire.js";
import {
  buildSnapshot,
  createOutcomesTable,
  dropWorkTables,
  type Plan,
  preparePlan,
  speculateSnapshot,
} from "../planner/planner.js";
import type { Source } from "../sources/source.js";
import { modelSql } from "../sources/source.js";
import { AheadQueue, type Speculation, speculates } from "../sources/speculate.js";
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
import {
  type BuiltBatches,
  type DeliverCtx,
  type DeliveryApi,
  deliverOperation,
  recordRowFailures,
  writeBuiltOutcomes,
} from "./deliver.js";
import { resolveList } from "./lists.js";
import { OutcomeWriter } from "./outcomes.js";

export type { DeliveryApi } from "./deliver.js";

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
  // work done ahead while sending goes on (DuckDB), and the next snapshot among it
  let ahead: AheadQueue | null = null;
  let snapshotAhead: Speculation | null = null;
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
    // Work done ahead while sending goes on (DuckDB), from when sending is under way.
    ahead = speculates(source) ? new AheadQueue(source) : null;
    snapshotAhead = ahead ? speculateSnapshot(source, plan, ahead) : null;
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
    const built: BuiltBatches = { spec: null, taken: [], rows: 0 };
    try {
      await recordRowFailures(source, plan, projectType, writer);
      // Unsubscribes finish before subscribes start: an identity change can name the same
      // Iterable person on both sides, and the subscribe must be the last word.
      const ctx: DeliverCtx = {
        api,
        source,
        plan,
        projectType,
        writer,
        listId: list.id,
        updateExistingUsersOnly: projectType !== "email" && sync.updateExistingUsersOnly,
        signal: opts.signal,
        onProgress: opts.onProgress,
        answerWarnings,
        refused,
        logs: sync.observability.retainSyncLogs ? { sync: name, runId } : null,
        built,
        ahead,
      };
      await deliverOperation("unsubscribe", ctx);
      await deliverOperation("subscribe", ctx);
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
    await ahead?.close();
    if (sync.observability.retainSyncLogs) {
      await appendLogsFromOutcomes(source, name, runId, plan.tables.outcomes);
    }
    // Built batches were logged while sending; their outcome rows are written only if the
    // snapshot needs them (some subscribe not confirmed), after the logs above.
    const planned = plan;
    await buildSnapshot(source, planned, {
      unwritten: { rows: built.rows, write: () => writeBuiltOutcomes(source, planned, built) },
      ahead: snapshotAhead,
    });
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
    // before the work tables go: it reads the members
    await snapshotAhead?.settle(false);
    await ahead?.close().catch(() => undefined);
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
