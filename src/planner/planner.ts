/**
 * Runs the mirror diff inside the source: materialise the model, merge duplicates (only when an
 * identity repeats: otherwise the rows are the members, see sql.ts), diff against
 * the committed snapshot, and later build the next snapshot from confirmed outcomes. Only the
 * plan's records, invalid rows and duplicate losers ever leave the warehouse, streamed in batches.
 */
import { ConfigError, SourceError } from "../errors.js";
import type { ProjectType } from "../iterable/wire.js";
import type { Source } from "../sources/source.js";
import { runTable } from "./names.js";
import {
  buildMembersSql,
  buildOutcomesTableSql,
  buildPlanSql,
  buildRowsSql,
  buildSnapshotSql,
  dropSharedEmailSql,
  duplicateRowsSql,
  identityIndex,
  invalidRowsSql,
  keepSharedEmailLosersSql,
  memberCountsSql,
  membersFromUniqueRowsSql,
  type PlanTables,
  planCountsSql,
  planRecordsSql,
  rowStatsSql,
  sharedEmailCountSql,
  workSetupSql,
  workTable,
} from "./sql.js";

export interface PlanInput {
  source: Source;
  syncName: string;
  projectType: ProjectType;
  modelSql: string;
  identifiers: { email?: string | undefined; userId?: string | undefined };
  runId: number;
  /** committed snapshot table to diff against; null plans a first run (subscribe everyone) */
  baseline: string | null;
  /** subscribe every member again, not only new and changed ones (full resync) */
  resendAll?: boolean;
  signal?: AbortSignal | undefined;
}

export interface Plan {
  syncName: string;
  runId: number;
  tables: PlanTables;
  rowsRead: number;
  invalidRows: number;
  members: number;
  duplicateRows: number;
  /** which kinds of duplicate rows exist, so that only those queries run */
  duplicateKinds: { conflicts: boolean; sharedEmail: boolean };
  subscribe: { added: number; changed: number };
  unsubscribe: number;
  /** unsubscribes not sent because the same person is subscribed again in this run */
  skippedUnsubscribe: number;
  unchanged: number;
  previousMembers: number;
  firstRun: boolean;
}

export interface PlanRecord {
  identity: string;
  kind: "added" | "changed" | "removed";
  email: string | null;
  userId: string | null;
}

/** Resolves the mapped identifier columns against the model's real columns (case-insensitive
 *  fallback, since warehouses fold unquoted names), or explains which one is missing. */
export async function resolveColumns(
  source: Source,
  syncName: string,
  modelSql: string,
  identifiers: { email?: string | undefined; userId?: string | undefined },
): Promise<{ email?: string; userId?: string; columns: string[] }> {
  let cols: { name: string }[];
  try {
    cols = await source.describe(modelSql);
  } catch (err) {
    throw new SourceError(
      `sync "${syncName}": the model does not run: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
  const names = cols.map((c) => c.name);
  const out: { email?: string; userId?: string; columns: string[] } = { columns: names };
  for (const key of ["email", "userId"] as const) {
    const wanted = identifiers[key];
    if (!wanted) continue;
    const found =
      names.find((n) => n === wanted) ??
      names.find((n) => n.toLowerCase() === wanted.toLowerCase());
    if (!found) {
      throw new ConfigError(
        `column "${wanted}" not in model; the model returns: ${names.join(", ") || "(no columns)"}`,
        `syncs.${syncName}.identifiers.${key}`,
      );
    }
    out[key] = found;
  }
  return out;
}

async function run(source: Source, stmts: string[], signal?: AbortSignal): Promise<void> {
  for (const sql of stmts) {
    signal?.throwIfAborted();
    await source.exec(sql);
  }
}

function n(v: unknown): number {
  const x = Number(v ?? 0);
  return Number.isFinite(x) ? x : 0;
}

export function planTables(syncName: string, runId: number, baseline: string | null): PlanTables {
  return {
    rows: runTable(syncName, "rows", runId),
    members: runTable(syncName, "members", runId),
    plan: runTable(syncName, "plan", runId),
    outcomes: runTable(syncName, "outcomes", runId),
    snap: runTable(syncName, "snap", runId),
    previous: baseline,
  };
}

/** Materialises rows, members and plan tables for one run and returns the counts. */
export async function preparePlan(input: PlanInput): Promise<Plan> {
  const { source, syncName, runId } = input;
  const d = source.dialect;
  const schema = source.stateSchema;
  const cols = await resolveColumns(source, syncName, input.modelSql, input.identifiers);
  const tables = planTables(syncName, runId, input.baseline);
  const hybrid = input.projectType === "hybrid";
  let stats: Record<string, unknown> | undefined;
  let memberCounts: { member_count: number; multi_count: number } | null = null;
  let sharedEmail = 0;
  try {
    await run(
      source,
      [
        ...workSetupSql(d, schema),
        ...buildRowsSql(d, schema, tables, {
          modelSql: input.modelSql,
          projectType: input.projectType,
          emailColumn: cols.email,
          userIdColumn: cols.userId,
        }),
        ...(hybrid && d.name === "mysql" ? emailIndex(source, tables.rows) : []),
      ],
      input.signal,
    );
    [stats] = await source.query(rowStatsSql(d, schema, tables, input.projectType));
    const valid = n(stats?.valid_count);
    // Emails shared by valid rows are the only way to a hybrid merge or a shared email.
    const emailsShared = hybrid && n(stats?.email_count) > n(stats?.distinct_email_count);
    const unique = valid === n(stats?.identity_count);
    if (unique) {
      await run(
        source,
        membersFromUniqueRowsSql(d, schema, tables, {
          invalid: n(stats?.row_count) > valid,
          mergeEmails: emailsShared,
        }),
        input.signal,
      );
      // Every valid row is a member, unless a hybrid merge removed some.
      if (!emailsShared) memberCounts = { member_count: valid, multi_count: 0 };
    } else {
      await run(source, buildMembersSql(d, schema, tables, input.projectType), input.signal);
    }
    if (hybrid && (emailsShared || !unique)) {
      sharedEmail = n((await source.query(sharedEmailCountSql(d, schema, tables)))[0]?.n);
      if (sharedEmail > 0) {
        // The renamed rows table is gone: keep the losers' rows for the duplicate-rows stream.
        if (unique) await source.exec(keepSharedEmailLosersSql(d, schema, tables));
        await source.exec(dropSharedEmailSql(d, schema, tables));
      }
    }
    await run(
      source,
      buildPlanSql(d, schema, tables, { resendAll: input.resendAll === true }),
      input.signal,
    );
  } catch (err) {
    if (err instanceof SourceError) {
      throw new SourceError(`sync "${syncName}": planning failed: ${err.message}`, { cause: err });
    }
    throw err;
  }
  if (!memberCounts) {
    const [m] = await source.query(memberCountsSql(d, schema, tables));
    memberCounts = { member_count: n(m?.member_count), multi_count: n(m?.multi_count) };
  }
  const planRows = await source.query(planCountsSql(d, schema, tables));
  // Only a member merged from several rows can have lost a conflict: skip the join otherwise.
  const duplicateKinds = {
    conflicts: memberCounts.multi_count > 0,
    sharedEmail: sharedEmail > 0,
  };
  const dupSql = duplicateRowsSql(d, schema, tables, duplicateKinds);
  const dupRows = dupSql
    ? await source.query(`select count(*) as n from (${dupSql}) x`)
    : [{ n: 0 }];
  let added = 0;
  let changed = 0;
  let unsub = 0;
  let skipped = 0;
  for (const row of planRows) {
    const c = n(row.n);
    if (row.op === "subscribe") {
      if (row.kind === "added") added += c;
      else changed += c;
    } else if (n(row.send) === 1) unsub += c;
    else skipped += c;
  }
  const members = memberCounts.member_count;
  const rowsRead = n(stats?.row_count);
  return {
    syncName,
    runId,
    tables,
    rowsRead,
    invalidRows: rowsRead - n(stats?.valid_count),
    members,
    duplicateRows: n(dupRows[0]?.n),
    duplicateKinds,
    subscribe: { added, changed },
    unsubscribe: unsub,
    skippedUnsubscribe: skipped,
    unchanged: members - added - changed,
    // Every snapshot row either matched a member (all members but the added ones) or is
    // unsubscribed (sent or not): no need to count the snapshot.
    previousMembers: input.baseline === null ? 0 : members - added + unsub + skipped,
    firstRun: input.baseline === null,
  };
}

function emailIndex(source: Source, table: string): string[] {
  const d = source.dialect;
  const idx = d.quoteIdent(`${table}_email_idx`.slice(0, 60));
  return [`create index ${idx} on ${d.table(source.stateSchema, table)} (email)`];
}

/** Streams the records of one operation, in batches of about `batchSize`. */
export async function* planRecords(
  source: Source,
  plan: Plan,
  op: "subscribe" | "unsubscribe",
  batchSize = 5000,
): AsyncGenerator<PlanRecord[]> {
  const sql = planRecordsSql(source.dialect, source.stateSchema, plan.tables, op);
  for await (const batch of source.stream(sql, [], batchSize)) {
    yield batch.map((r) => ({
      identity: String(r.identity),
      kind: String(r.kind) as PlanRecord["kind"],
      email: r.email === null || r.email === undefined ? null : String(r.email),
      userId: r.user_id === null || r.user_id === undefined ? null : String(r.user_id),
    }));
  }
}

/** Streams rows without a usable identity (their identifiers as normalised). */
export async function* invalidRows(
  source: Source,
  plan: Plan,
  batchSize = 5000,
): AsyncGenerator<{ email: string | null; userId: string | null }[]> {
  const sql = invalidRowsSql(source.dialect, source.stateSchema, plan.tables);
  for await (const batch of source.stream(sql, [], batchSize)) {
    yield batch.map((r) => ({
      email: r.email === null || r.email === undefined ? null : String(r.email),
      userId: r.user_id === null || r.user_id === undefined ? null : String(r.user_id),
    }));
  }
}

export interface DuplicateRow {
  identity: string;
  email: string | null;
  userId: string | null;
  keptEmail: string | null;
  keptUserId: string | null;
}

/** Streams rows that lost a duplicate conflict. */
export async function* duplicateRows(
  source: Source,
  plan: Plan,
  batchSize = 5000,
): AsyncGenerator<DuplicateRow[]> {
  const sql = duplicateRowsSql(
    source.dialect,
    source.stateSchema,
    plan.tables,
    plan.duplicateKinds,
  );
  if (!sql) return;
  const s = (v: unknown) => (v === null || v === undefined ? null : String(v));
  for await (const batch of source.stream(sql, [], batchSize)) {
    yield batch.map((r) => ({
      identity: String(r.identity),
      email: s(r.email),
      userId: s(r.user_id),
      keptEmail: s(r.kept_email),
      keptUserId: s(r.kept_user_id),
    }));
  }
}

export async function createOutcomesTable(source: Source, plan: Plan): Promise<void> {
  await run(source, buildOutcomesTableSql(source.dialect, source.stateSchema, plan.tables));
}

/** Builds the next snapshot from the plan and the confirmed outcomes. Registering it as the
 *  baseline is a separate step (src/state commitSnapshot): until then the old one stands. */
export async function buildSnapshot(
  source: Source,
  plan: Plan,
  signal?: AbortSignal,
): Promise<void> {
  const d = source.dialect;
  await run(
    source,
    [
      ...identityIndex(d, source.stateSchema, plan.tables.outcomes),
      ...buildSnapshotSql(d, source.stateSchema, plan.tables),
    ],
    signal,
  );
}

/** Drops the run-scoped work tables (everything but the snapshot). */
export async function dropWorkTables(source: Source, plan: Plan): Promise<void> {
  const d = source.dialect;
  const schema = source.stateSchema;
  // the work catalog is gone if the instance was closed since (a new process, a reopened file)
  for (const sql of workSetupSql(d, schema)) await source.exec(sql);
  for (const table of [plan.tables.rows, plan.tables.members, plan.tables.plan]) {
    await source.exec(d.dropTable(workTable(d, schema, table)));
  }
  await source.exec(d.dropTable(d.table(schema, plan.tables.outcomes)));
}
