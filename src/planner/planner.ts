/**
 * Runs the mirror diff inside the source: materialise the model, merge duplicates (only when an
 * identity repeats: otherwise the rows are the members, see sql.ts), diff against
 * the committed snapshot, and later build the next snapshot from confirmed outcomes. Only the
 * plan's records, invalid rows and duplicate losers ever leave the warehouse, streamed in batches.
 */
import { ConfigError, SourceError } from "../errors.js";
import type { ProjectType } from "../iterable/wire.js";
import type { Source } from "../sources/source.js";
import type { AheadQueue, Speculation } from "../sources/speculate.js";
import { buildableSql, buildsBodies } from "./bulk.js";
import { runTable } from "./names.js";
import {
  analyzeSql,
  buildMembersSql,
  buildOutcomesTableSql,
  buildPlanSql,
  buildRowsSql,
  buildSnapshotSql,
  confirmedSubscribesSql,
  DISTINCT_EMAILS_NOTE,
  dropSharedEmailSql,
  duplicateRowsSql,
  identityIndex,
  invalidRowsSql,
  keepSharedEmailLosersSql,
  keptPreviousCountSql,
  memberCountsSql,
  membersFromUniqueRowsSql,
  membersSnapshotSql,
  mergeEmailOnlyMembersSql,
  type PlanTables,
  planCountsSql,
  planIsView,
  planRecordsSql,
  restoreRowsSql,
  rowCountsSql,
  rowStatsSql,
  type SnapshotForm,
  setTableNoteSql,
  sharedEmailCountSql,
  snapshotFormOf,
  tableNoteSql,
  uniqueCheckSql,
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
  projectType: ProjectType;
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

/** Sources whose work tables' home exists: DuckDB's work catalog is attached to the instance,
 *  which lives as long as the Source. */
const workHomes = new WeakSet<Source>();

async function ensureWorkHome(source: Source): Promise<void> {
  if (workHomes.has(source)) return;
  for (const sql of workSetupSql(source.dialect, source.stateSchema)) await source.exec(sql);
  workHomes.add(source);
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

/** How the committed snapshot `table` keeps its identities (snapshots of earlier versions, and of
 *  other warehouses, have an identity column). */
async function snapshotForm(source: Source, table: string): Promise<SnapshotForm> {
  const columns = await source.describe(
    `select * from ${source.dialect.table(source.stateSchema, table)}`,
  );
  return snapshotFormOf(columns.map((c) => c.name));
}

/** Which members a plan was built from, and what that says about duplicates. */
interface Members {
  /** known without a count: every valid row is a member */
  counts: { member_count: number; multi_count: number } | null;
  /** userId members dropped because a smaller one carries the same email */
  sharedEmail: number;
}

/**
 * Materialises rows, members and plan tables for one run and returns the counts.
 *
 * Members are one per identity. Most models repeat no identity, and then the rows are the members
 * (membersFromUniqueRowsSql: no grouping). Without a committed snapshot, one count over the rows
 * decides (rowStatsSql). With one, the plan is built from the rows as they are and checked after
 * the diff, which shows a repeated identity or a shared email from its own counts
 * (uniqueCheckSql): no count of distinct values over every row. If the check fails, the members
 * are built again the general way and the plan with them.
 */
export async function preparePlan(input: PlanInput): Promise<Plan> {
  const { source, syncName, runId } = input;
  const d = source.dialect;
  const schema = source.stateSchema;
  const cols = await resolveColumns(source, syncName, input.modelSql, input.identifiers);
  const tables = planTables(syncName, runId, input.baseline);
  const hybrid = input.projectType === "hybrid";
  // Records sent as built JSON: decided by the diff, or without a previous snapshot (every
  // member subscribed) by the rows and members statements.
  const buildable = buildsBodies(d)
    ? (e: string, u: string) => buildableSql(d, input.projectType, e, u)
    : undefined;
  const membersBuildable = input.baseline === null ? buildable : undefined;
  let stats: Record<string, unknown> | undefined;
  let members: Members;
  let planRows: Record<string, unknown>[];
  try {
    await ensureWorkHome(source);
    if (input.baseline !== null) tables.previousForm = await snapshotForm(source, input.baseline);
    const planSql = buildPlanSql(d, schema, tables, {
      resendAll: input.resendAll === true,
      ...(buildable ? { buildable } : {}),
    });
    await run(
      source,
      [
        ...buildRowsSql(d, schema, tables, {
          modelSql: input.modelSql,
          projectType: input.projectType,
          emailColumn: cols.email,
          userIdColumn: cols.userId,
          buildable: membersBuildable,
        }),
        ...(hybrid && d.name === "mysql" ? emailIndex(source, tables.rows) : []),
      ],
      input.signal,
    );
    const step: PlanStep = {
      source,
      tables,
      projectType: input.projectType,
      planSql,
      membersBuildable,
      signal: input.signal,
    };
    // The snapshot to check against after the diff. Hybrid, the email check needs one in which no
    // two rows share an email.
    const checkAfter =
      input.baseline !== null &&
      (!hybrid || (await tableNote(source, input.baseline)) === DISTINCT_EMAILS_NOTE);
    ({ stats, members, planRows } = checkAfter
      ? await planCheckedAfter(step)
      : await planCountedFirst(step));
  } catch (err) {
    if (err instanceof SourceError) {
      throw new SourceError(`sync "${syncName}": planning failed: ${err.message}`, { cause: err });
    }
    throw err;
  }
  let memberCounts = members.counts;
  if (!memberCounts) {
    const [m] = await source.query(memberCountsSql(d, schema, tables));
    memberCounts = { member_count: n(m?.member_count), multi_count: n(m?.multi_count) };
  }
  // Only a member merged from several rows can have lost a conflict: skip the join otherwise.
  const duplicateKinds = {
    conflicts: memberCounts.multi_count > 0,
    sharedEmail: members.sharedEmail > 0,
  };
  const dupSql = duplicateRowsSql(d, schema, tables, duplicateKinds);
  const dupRows = dupSql
    ? await source.query(`select count(*) as n from (${dupSql}) x`)
    : [{ n: 0 }];
  const counts = planCounts(planRows);
  const memberTotal = memberCounts.member_count;
  const rowsRead = n(stats?.row_count);
  return {
    syncName,
    runId,
    projectType: input.projectType,
    tables,
    rowsRead,
    invalidRows: rowsRead - n(stats?.valid_count),
    members: memberTotal,
    duplicateRows: n(dupRows[0]?.n),
    duplicateKinds,
    subscribe: { added: counts.added, changed: counts.changed },
    unsubscribe: counts.unsubscribe,
    skippedUnsubscribe: counts.skipped,
    unchanged: memberTotal - counts.added - counts.changed,
    // Every snapshot row either matched a member (all members but the added ones) or is
    // unsubscribed (sent or not): no need to count the snapshot.
    previousMembers:
      input.baseline === null
        ? 0
        : memberTotal - counts.added + counts.unsubscribe + counts.skipped,
    firstRun: input.baseline === null,
  };
}

/** What the members and plan steps need. */
interface PlanStep {
  source: Source;
  tables: PlanTables;
  projectType: ProjectType;
  planSql: string[];
  /** RowsSpec.buildable, for members grouped from the rows */
  membersBuildable?: ((e: string, u: string) => string) | undefined;
  signal?: AbortSignal | undefined;
}

interface Planned {
  stats: Record<string, unknown> | undefined;
  members: Members;
  planRows: Record<string, unknown>[];
}

/** The plan table (or view), replacing one built before. */
async function buildPlan(step: PlanStep): Promise<void> {
  await dropWorkRelation(step.source, step.tables, step.tables.plan);
  await run(step.source, step.planSql, step.signal);
}

/** Drops a run-scoped work table, or the plan when it is a view (planIsView). */
async function dropWorkRelation(source: Source, tables: PlanTables, name: string): Promise<void> {
  const d = source.dialect;
  const target = workTable(d, source.stateSchema, name);
  const view = name === tables.plan && planIsView(d, tables);
  await source.exec(view ? `drop view if exists ${target}` : d.dropTable(target));
}

/** Members decided by one count over the rows (rowStatsSql), then the plan. */
async function planCountedFirst(step: PlanStep): Promise<Planned> {
  const { source, tables, signal } = step;
  const d = source.dialect;
  const hybrid = step.projectType === "hybrid";
  const [stats] = await source.query(rowStatsSql(d, source.stateSchema, tables, step.projectType));
  const valid = n(stats?.valid_count);
  // Emails shared by valid rows are the only way to a hybrid merge or a shared email.
  const emailsShared = hybrid && n(stats?.email_count) > n(stats?.distinct_email_count);
  const members =
    valid === n(stats?.identity_count)
      ? await membersOfRows(source, tables, hybrid, {
          valid,
          invalid: n(stats?.row_count) > valid,
          emailsShared,
          signal,
        })
      : await groupedMembers(source, tables, step.projectType, signal, step.membersBuildable);
  await buildPlan(step);
  return {
    stats,
    members,
    planRows: await source.query(planCountsSql(d, source.stateSchema, tables)),
  };
}

/** Members taken from the rows as they are, the plan, then uniqueCheckSql; if it fails, members
 *  are built again the general way (grouping, or the hybrid merge) and the plan with them. */
async function planCheckedAfter(step: PlanStep): Promise<Planned> {
  const { source, tables, signal } = step;
  const d = source.dialect;
  const schema = source.stateSchema;
  const hybrid = step.projectType === "hybrid";
  const [stats] = await source.query(rowCountsSql(d, schema, tables));
  const valid = n(stats?.valid_count);
  let members = await membersOfRows(source, tables, hybrid, {
    valid,
    invalid: n(stats?.row_count) > valid,
    emailsShared: false,
    signal,
  });
  await buildPlan(step);
  const planRows = await source.query(planCountsSql(d, schema, tables));
  const check = await source.query(uniqueCheckSql(d, schema, tables, hybrid));
  const verdict = uniqueVerdict(check[0], planRows, valid);
  if (verdict.identities && (!hybrid || verdict.emails)) return { stats, members, planRows };
  if (!verdict.identities) {
    // A repeated identity: every row back into the rows table, and the general way.
    await source.exec(restoreRowsSql(d, schema, tables));
    members = await groupedMembers(source, tables, step.projectType, signal, step.membersBuildable);
  } else {
    const merge = [
      mergeEmailOnlyMembersSql(d, schema, tables),
      ...analyzeSql(d, workTable(d, schema, tables.members)),
    ];
    await run(source, merge, signal);
    members = { counts: null, sharedEmail: await dropSharedEmails(source, tables, true) };
  }
  await buildPlan(step);
  return { stats, members, planRows: await source.query(planCountsSql(d, schema, tables)) };
}

function planCounts(planRows: Record<string, unknown>[]) {
  const out = { added: 0, changed: 0, unsubscribe: 0, skipped: 0 };
  for (const row of planRows) {
    const c = n(row.n);
    if (row.op === "subscribe") {
      if (row.kind === "added") out.added += c;
      else out.changed += c;
    } else if (n(row.send) === 1) out.unsubscribe += c;
    else out.skipped += c;
  }
  return out;
}

/** Reads uniqueCheckSql's answer (see there for why these equalities prove it). */
function uniqueVerdict(
  check: Record<string, unknown> | undefined,
  planRows: Record<string, unknown>[],
  valid: number,
): { identities: boolean; emails: boolean } {
  const c = planCounts(planRows);
  const removed = c.unsubscribe + c.skipped;
  const sent = n(check?.sent_emails);
  return {
    identities:
      valid === c.added + n(check?.previous_count) - removed &&
      n(check?.added_identities) === c.added,
    emails: n(check?.distinct_sent_emails) === sent && n(check?.unchanged_on_sent_emails) === 0,
  };
}

/** Members when no identity repeats: the rows table becomes the members table. */
async function membersOfRows(
  source: Source,
  tables: PlanTables,
  hybrid: boolean,
  opts: {
    valid: number;
    invalid: boolean;
    emailsShared: boolean;
    signal?: AbortSignal | undefined;
  },
): Promise<Members> {
  const d = source.dialect;
  await run(
    source,
    membersFromUniqueRowsSql(d, source.stateSchema, tables, {
      invalid: opts.invalid,
      mergeEmails: opts.emailsShared,
    }),
    opts.signal,
  );
  // Every valid row is a member, unless a hybrid merge removed some.
  if (!opts.emailsShared)
    return { counts: { member_count: opts.valid, multi_count: 0 }, sharedEmail: 0 };
  return { counts: null, sharedEmail: hybrid ? await dropSharedEmails(source, tables, true) : 0 };
}

/** Members grouped from the rows (an identity repeats). */
async function groupedMembers(
  source: Source,
  tables: PlanTables,
  projectType: ProjectType,
  signal?: AbortSignal,
  buildable?: (e: string, u: string) => string,
): Promise<Members> {
  await run(
    source,
    buildMembersSql(source.dialect, source.stateSchema, tables, projectType, buildable),
    signal,
  );
  return {
    counts: null,
    sharedEmail: projectType === "hybrid" ? await dropSharedEmails(source, tables, false) : 0,
  };
}

/** Hybrid: drops the userId members that lose a shared email; returns how many. */
async function dropSharedEmails(
  source: Source,
  tables: PlanTables,
  fromRows: boolean,
): Promise<number> {
  const d = source.dialect;
  const schema = source.stateSchema;
  const shared = n((await source.query(sharedEmailCountSql(d, schema, tables)))[0]?.n);
  if (shared > 0) {
    // The renamed rows table is gone: keep the losers' rows for the duplicate-rows stream.
    if (fromRows) await source.exec(keepSharedEmailLosersSql(d, schema, tables));
    await source.exec(dropSharedEmailSql(d, schema, tables));
  }
  return shared;
}

/** The comment of a state table, or null (none, or a dialect without them). */
async function tableNote(source: Source, table: string): Promise<string | null> {
  const sql = tableNoteSql(source.dialect);
  if (!sql) return null;
  const rows = await source.query(sql, [source.stateSchema, table]);
  const note = rows[0]?.note;
  return typeof note === "string" ? note : null;
}

function emailIndex(source: Source, table: string): string[] {
  const d = source.dialect;
  const idx = d.quoteIdent(`${table}_email_idx`.slice(0, 60));
  return [`create index ${idx} on ${d.table(source.stateSchema, table)} (email)`];
}

/** Streams the records of one operation, in batches of about 5,000; `unbuilt`: only those not
 *  sent in built bodies (see planRecordsSql). */
export async function* planRecords(
  source: Source,
  plan: Plan,
  op: "subscribe" | "unsubscribe",
  opts: { unbuilt?: boolean } = {},
): AsyncGenerator<PlanRecord[]> {
  const sql = planRecordsSql(source.dialect, source.stateSchema, plan.tables, op, opts);
  for await (const batch of source.stream(sql, [], 5000)) {
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

/**
 * Confirmed subscribes the outcomes table does not hold: built batches Iterable took whole
 * (src/sync/deliver.ts). `write` puts their outcome rows in; the snapshot needs them only when
 * some planned subscribe was not confirmed.
 */
export interface UnwrittenOutcomes {
  rows: number;
  write(): Promise<void>;
}

/**
 * Queues the next snapshot as the members stand (membersSnapshotSql), built on a connection of its
 * own while sending goes on; buildSnapshot keeps it if the outcomes prove it right and settles it
 * either way. Settle it before the work tables go.
 */
export function speculateSnapshot(source: Source, plan: Plan, ahead: AheadQueue): Speculation {
  const statements = membersSnapshotSql(source.dialect, source.stateSchema, plan.tables);
  return ahead.speculate(async (tx) => {
    for (const sql of statements) await tx.exec(sql);
  });
}

/** Builds the next snapshot from the plan and the confirmed outcomes, or keeps the one built
 *  ahead (`ahead`, see speculateSnapshot) when it is the same. Registering it as the baseline is a
 *  separate step (src/state commitSnapshot): until then the old one stands. */
export async function buildSnapshot(
  source: Source,
  plan: Plan,
  opts: { unwritten?: UnwrittenOutcomes; ahead?: Speculation | null; signal?: AbortSignal } = {},
): Promise<void> {
  const d = source.dialect;
  const schema = source.stateSchema;
  const planned = plan.subscribe.added + plan.subscribe.changed;
  const confirmed =
    n((await source.query(confirmedSubscribesSql(d, schema, plan.tables)))[0]?.n) +
    (opts.unwritten?.rows ?? 0);
  const allSubscribesConfirmed = confirmed === planned;
  if (!allSubscribesConfirmed && opts.unwritten && opts.unwritten.rows > 0) {
    await opts.unwritten.write();
  }
  // Previous snapshot rows the next one keeps (failed unsubscribes...); null if unknown.
  let kept: number | null = 0;
  if (plan.tables.previous) {
    try {
      const sql = keptPreviousCountSql(d, schema, plan.tables, { allSubscribesConfirmed });
      kept = n((await source.query(sql))[0]?.n);
    } catch {
      kept = null;
    }
  }
  const taken = opts.ahead ? await opts.ahead.settle(allSubscribesConfirmed && kept === 0) : false;
  if (!taken) {
    await run(
      source,
      [
        ...identityIndex(d, schema, plan.tables.outcomes),
        ...buildSnapshotSql(d, schema, plan.tables, { allSubscribesConfirmed }),
      ],
      opts.signal,
    );
  }
  // Members never share an email, except in userId projects (merged or dropped in hybrid ones; the
  // email is the identity in email ones): unless the snapshot keeps previous rows, none of its rows
  // do, which spares the next plan a count of distinct emails (uniqueCheckSql).
  const note = setTableNoteSql(d, schema, plan.tables.snap, DISTINCT_EMAILS_NOTE);
  if (note && plan.projectType !== "userId" && kept === 0) {
    try {
      await source.exec(note);
    } catch {
      // The note only saves the next plan a count: a snapshot without it is planned against the
      // general way, and the run commits as well.
    }
  }
}

/** Drops the run-scoped work tables (everything but the snapshot). */
export async function dropWorkTables(source: Source, plan: Plan): Promise<void> {
  const d = source.dialect;
  const schema = source.stateSchema;
  // the work catalog is gone if the instance was closed since (a new process, a reopened file)
  await ensureWorkHome(source);
  // the plan first: it can be a view over the members
  for (const table of [plan.tables.plan, plan.tables.rows, plan.tables.members]) {
    await dropWorkRelation(source, plan.tables, table);
  }
  await source.exec(d.dropTable(workTable(d, schema, plan.tables.outcomes)));
}
