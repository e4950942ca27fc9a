/**
 * Reads and writes of the state schema: metadata, run rows, the snapshot register, sync logs,
 * retention. All SQL identifiers are quoted by the dialect; values are bound parameters.
 */
import { FAILURE_CODES } from "../errors.js";
import { parseRunTable, tablePrefix } from "../planner/names.js";
import { workTable } from "../planner/sql.js";
import type { Source, SqlExecutor } from "../sources/source.js";
import { daysAgoSql, nowSql, stateDdl, stateIndexes } from "./tables.js";

const ensured = new WeakSet<Source>();

/** Creates the state schema and its tables on first use (the user needs write access to it only). */
export async function ensureState(source: Source): Promise<void> {
  if (ensured.has(source)) return;
  const schema = source.stateSchema;
  // Two runs (or two `serve` processes) creating the state at the same moment can collide on the
  // catalog even with `if not exists` (DuckDB: write-write conflict; PostgreSQL: duplicate key in
  // pg_namespace). The loser's second attempt finds everything there.
  for (let attempt = 1; ; attempt++) {
    try {
      await source.ensureSchema(schema);
      for (const sql of stateDdl(source.dialect, schema)) await source.exec(sql);
      break;
    } catch (err) {
      if (attempt >= 3) throw err;
      await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
    }
  }
  for (const sql of stateIndexes(source.dialect, schema)) {
    try {
      await source.exec(sql);
    } catch {
      // already there (MySQL has no `create index if not exists`)
    }
  }
  ensured.add(source);
}

function t(source: Source, name: string): string {
  return source.dialect.table(source.stateSchema, name);
}

function p(source: Source, i: number): string {
  return source.dialect.param(i);
}

export interface SyncMetadata {
  listId: number | null;
  listName: string | null;
  fingerprint: string | null;
  snapshotTable: string | null;
  snapshotRunId: number | null;
}

function num(v: unknown): number | null {
  if (v === null || v === undefined) return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

function str(v: unknown): string | null {
  return v === null || v === undefined ? null : String(v);
}

export async function getMetadata(source: Source, sync: string): Promise<SyncMetadata | null> {
  const rows = await source.query(
    `select list_id, list_name, fingerprint, snapshot_table, snapshot_run_id from ${t(source, "sync_metadata")} where sync_name = ${p(source, 1)}`,
    [sync],
  );
  const r = rows[0];
  if (!r) return null;
  return {
    listId: num(r.list_id),
    listName: str(r.list_name),
    fingerprint: str(r.fingerprint),
    snapshotTable: str(r.snapshot_table),
    snapshotRunId: num(r.snapshot_run_id),
  };
}

/** Upserts part of a sync's metadata row (delete + insert keeps the SQL portable). */
export async function putMetadata(
  source: Source,
  sync: string,
  patch: Partial<SyncMetadata>,
): Promise<void> {
  await source.transaction(async (tx) => {
    const rows = await tx.query(
      `select list_id, list_name, fingerprint, snapshot_table, snapshot_run_id from ${t(source, "sync_metadata")} where sync_name = ${p(source, 1)}`,
      [sync],
    );
    const cur = rows[0] ?? {};
    const next = {
      list_id: "listId" in patch ? patch.listId : num(cur.list_id),
      list_name: "listName" in patch ? patch.listName : str(cur.list_name),
      fingerprint: "fingerprint" in patch ? patch.fingerprint : str(cur.fingerprint),
      snapshot_table: "snapshotTable" in patch ? patch.snapshotTable : str(cur.snapshot_table),
      snapshot_run_id: "snapshotRunId" in patch ? patch.snapshotRunId : num(cur.snapshot_run_id),
    };
    await tx.exec(`delete from ${t(source, "sync_metadata")} where sync_name = ${p(source, 1)}`, [
      sync,
    ]);
    await tx.exec(
      `insert into ${t(source, "sync_metadata")} (sync_name, list_id, list_name, fingerprint, snapshot_table, snapshot_run_id, updated_at) ` +
        `values (${[1, 2, 3, 4, 5, 6].map((i) => p(source, i)).join(", ")}, ${nowSql(source.dialect)})`,
      [
        sync,
        next.list_id ?? null,
        next.list_name ?? null,
        next.fingerprint ?? null,
        next.snapshot_table ?? null,
        next.snapshot_run_id ?? null,
      ],
    );
  });
}

export async function nextRunId(source: Source, sync: string): Promise<number> {
  const rows = await source.query(
    `select max(run_id) as m from ${t(source, "sync_runs")} where sync_name = ${p(source, 1)}`,
    [sync],
  );
  return (num(rows[0]?.m) ?? 0) + 1;
}

export type RunStatus =
  | "running"
  | "succeeded"
  | "completed_with_failures"
  | "failed"
  | "cancelled";

export async function insertRun(
  source: Source,
  row: { sync: string; runId: number; fullResync: boolean; listId: number | null },
): Promise<void> {
  await source.exec(
    `insert into ${t(source, "sync_runs")} (sync_name, run_id, status, started_at, full_resync, list_id) values (${p(source, 1)}, ${p(source, 2)}, 'running', ${nowSql(source.dialect)}, ${p(source, 3)}, ${p(source, 4)})`,
    [row.sync, row.runId, row.fullResync ? 1 : 0, row.listId],
  );
}

export interface RunCounts {
  listId: number | null;
  rowsRead: number;
  invalidRows: number;
  plannedSubscribe: number;
  plannedUnsubscribe: number;
  succeededSubscribe: number;
  succeededUnsubscribe: number;
  failedSubscribe: number;
  failedUnsubscribe: number;
  skippedUnsubscribe: number;
  unchanged: number;
  failuresByCode: Record<string, number>;
}

export async function finishRun(
  source: Source,
  sync: string,
  runId: number,
  status: RunStatus,
  counts: RunCounts | null,
  error: string | null,
): Promise<void> {
  const c = counts;
  const cols: [string, unknown][] = [
    ["status", status],
    ["error", error],
  ];
  if (c) {
    cols.push(
      ["list_id", c.listId],
      ["rows_read", c.rowsRead],
      ["invalid_rows", c.invalidRows],
      ["planned_subscribe", c.plannedSubscribe],
      ["planned_unsubscribe", c.plannedUnsubscribe],
      ["succeeded_subscribe", c.succeededSubscribe],
      ["succeeded_unsubscribe", c.succeededUnsubscribe],
      ["failed_subscribe", c.failedSubscribe],
      ["failed_unsubscribe", c.failedUnsubscribe],
      ["skipped_unsubscribe", c.skippedUnsubscribe],
      ["unchanged", c.unchanged],
      ["failures_by_code", JSON.stringify(c.failuresByCode)],
    );
  }
  const sets = cols.map(([name], i) => `${name} = ${p(source, i + 1)}`).join(", ");
  const n = cols.length;
  await source.exec(
    `update ${t(source, "sync_runs")} set ${sets}, finished_at = ${nowSql(source.dialect)} where sync_name = ${p(source, n + 1)} and run_id = ${p(source, n + 2)}`,
    [...cols.map(([, v]) => v), sync, runId],
  );
}

export interface RunRow {
  runId: number;
  status: RunStatus;
  startedAt: string | null;
  finishedAt: string | null;
  fullResync: boolean;
  listId: number | null;
  rowsRead: number | null;
  invalidRows: number | null;
  plannedSubscribe: number | null;
  plannedUnsubscribe: number | null;
  succeededSubscribe: number | null;
  succeededUnsubscribe: number | null;
  failedSubscribe: number | null;
  failedUnsubscribe: number | null;
  skippedUnsubscribe: number | null;
  unchanged: number | null;
  failuresByCode: Record<string, number>;
  error: string | null;
}

function iso(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (v instanceof Date) return v.toISOString();
  const s = String(v);
  const d = new Date(/[zZ]|[+-]\d\d(:?\d\d)?$/.test(s) ? s : `${s.replace(" ", "T")}Z`);
  return Number.isNaN(d.getTime()) ? s : d.toISOString();
}

export async function listRuns(source: Source, sync: string, limit = 20): Promise<RunRow[]> {
  const rows = await source.query(
    `select * from ${t(source, "sync_runs")} where sync_name = ${p(source, 1)} order by run_id desc limit ${Math.max(1, Math.trunc(limit))}`,
    [sync],
  );
  return rows.map(toRunRow);
}

export async function getRun(source: Source, sync: string, runId: number): Promise<RunRow | null> {
  const rows = await source.query(
    `select * from ${t(source, "sync_runs")} where sync_name = ${p(source, 1)} and run_id = ${p(source, 2)}`,
    [sync, runId],
  );
  return rows[0] ? toRunRow(rows[0]) : null;
}

function toRunRow(r: Record<string, unknown>): RunRow {
  return {
    runId: Number(r.run_id),
    status: String(r.status) as RunStatus,
    startedAt: iso(r.started_at),
    finishedAt: iso(r.finished_at),
    fullResync: num(r.full_resync) === 1,
    listId: num(r.list_id),
    rowsRead: num(r.rows_read),
    invalidRows: num(r.invalid_rows),
    plannedSubscribe: num(r.planned_subscribe),
    plannedUnsubscribe: num(r.planned_unsubscribe),
    succeededSubscribe: num(r.succeeded_subscribe),
    succeededUnsubscribe: num(r.succeeded_unsubscribe),
    failedSubscribe: num(r.failed_subscribe),
    failedUnsubscribe: num(r.failed_unsubscribe),
    skippedUnsubscribe: num(r.skipped_unsubscribe),
    unchanged: num(r.unchanged),
    failuresByCode: r.failures_by_code
      ? (JSON.parse(String(r.failures_by_code)) as Record<string, number>)
      : {},
    error: str(r.error),
  };
}

export interface FailureRow {
  runId: number;
  recordKey: string | null;
  operation: string;
  email: string | null;
  userId: string | null;
  errorCode: string | null;
  errorMessage: string | null;
  loggedAt: string | null;
}

export async function listFailures(
  source: Source,
  sync: string,
  opts: { runId?: number; code?: string; limit?: number } = {},
): Promise<FailureRow[]> {
  const params: unknown[] = [sync];
  let where = `sync_name = ${p(source, 1)} and status = 'failed'`;
  if (opts.runId !== undefined) {
    params.push(opts.runId);
    where += ` and run_id = ${p(source, params.length)}`;
  }
  if (opts.code !== undefined) {
    if (!(FAILURE_CODES as readonly string[]).includes(opts.code)) {
      throw new TypeError(
        `unknown failure code "${opts.code}"; known codes: ${FAILURE_CODES.join(", ")}`,
      );
    }
    params.push(opts.code);
    where += ` and error_code = ${p(source, params.length)}`;
  }
  const limit = Math.max(1, Math.trunc(opts.limit ?? 1000));
  const rows = await source.query(
    `select run_id, record_key, operation, email, user_id, error_code, error_message, logged_at from ${t(source, "sync_logs")} where ${where} order by run_id desc, record_key limit ${limit}`,
    params,
  );
  return rows.map((r) => ({
    runId: Number(r.run_id),
    recordKey: str(r.record_key),
    operation: String(r.operation),
    email: str(r.email),
    userId: str(r.user_id),
    errorCode: str(r.error_code),
    errorMessage: str(r.error_message),
    loggedAt: iso(r.logged_at),
  }));
}

/** Copies one run's outcomes into sync_logs, inside the warehouse. */
export async function appendLogsFromOutcomes(
  source: Source,
  sync: string,
  runId: number,
  outcomesTable: string,
): Promise<void> {
  await appendLogs(
    source,
    sync,
    runId,
    workTable(source.dialect, source.stateSchema, outcomesTable),
  );
}

/** Sync log rows of outcome rows: `outcomes` is a qualified table, or a parenthesised select,
 *  with the outcomes table's columns (identity, op, email, user_id, status, error_code, error_message).
 *  `via`: the connection to write on (a transaction of the source's), if not the source's own. */
export async function appendLogs(
  source: Source,
  sync: string,
  runId: number,
  outcomes: string,
  via: SqlExecutor = source,
): Promise<void> {
  await via.exec(
    `insert into ${t(source, "sync_logs")} (sync_name, run_id, record_key, operation, email, user_id, status, error_code, error_message, logged_at) ` +
      `select ${p(source, 1)}, ${p(source, 2)}, identity, op, email, user_id, status, error_code, error_message, ${nowSql(source.dialect)} from ${outcomes} o`,
    [sync, runId],
  );
}

/** Registers a committed snapshot and makes it the baseline: the commit point of a run. */
export async function commitSnapshot(
  source: Source,
  sync: string,
  runId: number,
  table: string,
  fingerprint: string,
): Promise<void> {
  await source.exec(
    `insert into ${t(source, "sync_snapshots")} (sync_name, run_id, table_name, fingerprint, created_at) values (${p(source, 1)}, ${p(source, 2)}, ${p(source, 3)}, ${p(source, 4)}, ${nowSql(source.dialect)})`,
    [sync, runId, table, fingerprint],
  );
  await putMetadata(source, sync, { snapshotTable: table, snapshotRunId: runId, fingerprint });
}

/**
 * Retention at the end of a run: log rows older than `logDays` UTC days are deleted; of the
 * committed snapshots the newest `keepSnapshots` are kept (always including the baseline);
 * every other table of this sync (older snapshots, tables left by crashed runs) is dropped,
 * except those of `activeRunId`.
 */
export async function applyRetention(
  source: Source,
  sync: string,
  opts: { logDays: number; keepSnapshots: number; activeRunId?: number },
): Promise<{ droppedTables: string[] }> {
  await source.exec(
    `delete from ${t(source, "sync_logs")} where sync_name = ${p(source, 1)} and logged_at < ${daysAgoSql(source.dialect, opts.logDays)}`,
    [sync],
  );
  const meta = await getMetadata(source, sync);
  const snaps = await source.query(
    `select run_id, table_name from ${t(source, "sync_snapshots")} where sync_name = ${p(source, 1)} order by run_id desc`,
    [sync],
  );
  const keep = new Set<string>();
  if (meta?.snapshotTable) keep.add(meta.snapshotTable);
  for (const r of snaps) {
    if (keep.size >= Math.max(1, opts.keepSnapshots)) break;
    keep.add(String(r.table_name));
  }
  const dropped: string[] = [];
  const tables = await source.listTables(source.stateSchema, tablePrefix(sync));
  for (const table of tables) {
    const parsed = parseRunTable(sync, table);
    if (!parsed || keep.has(table)) continue;
    if (opts.activeRunId !== undefined && parsed.runId === opts.activeRunId) continue;
    await source.exec(source.dialect.dropTable(t(source, table)));
    dropped.push(table);
  }
  const gone = snaps.map((r) => String(r.table_name)).filter((n) => !keep.has(n));
  for (const name of gone) {
    await source.exec(
      `delete from ${t(source, "sync_snapshots")} where sync_name = ${p(source, 1)} and table_name = ${p(source, 2)}`,
      [sync, name],
    );
  }
  return { droppedTables: dropped };
}
