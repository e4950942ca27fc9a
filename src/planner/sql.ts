/**
 * The mirror diff as SQL, run inside the source warehouse (pure string building, no I/O).
 *
 * One run goes through these tables, all in the state schema:
 *   rows     every model row, identifiers normalised, identity computed (NULL: no valid identity)
 *   members  one row per identity (duplicates merged; the smallest values win a conflict)
 *            When no identity repeats (the common case), grouping would change nothing: the rows
 *            table is renamed to members instead (no grouping, no copy), and a new rows table
 *            keeps only the rows the streams still need: invalid rows and losers of a shared
 *            email. A first run checks this with one count over the rows (rowStatsSql); a run
 *            with a committed snapshot checks it after the diff, from the plan (uniqueCheckSql).
 *   plan     what to send: subscribes (added/changed members) and unsubscribes (removed members,
 *            identifiers taken from the snapshot), with `send = 0` for an unsubscribe superseded
 *            by a subscribe of the same person in this run
 *   outcomes one row per record sent or failed, written by the run from Iterable's answers
 *   snap     the new snapshot, built from the previous one, the plan and the confirmed outcomes;
 *            its table comment says when no two of its rows share an email (DISTINCT_EMAILS_NOTE);
 *            on DuckDB it keeps no identity column, only whether the identity is the userId
 *            (`by_user`), since the identity is `'u:' || user_id` or `'e:' || email` (see
 *            SnapshotForm)
 *
 * On DuckDB the run-scoped work tables (rows, members, plan) live in an in-memory catalog attached
 * to the instance (`workTable`), not in the database file: they are rebuilt by every run and never
 * outlive it, and writing them to the file (compression, checkpoint) cost several times the diff
 * itself. DuckDB spills them to its temp directory past `memory_limit`; every connection of the
 * instance (streams included) sees them. On PostgreSQL they are unlogged tables (no WAL: they never
 * outlive the run). Outcomes and snapshots stay in the state schema.
 */
import type { ProjectType } from "../iterable/wire.js";
import type { Dialect } from "../sources/source.js";

/** Longest email that can be valid (64-char local part, @, 253-char domain), with slack. */
export const MAX_EMAIL_CHARS = 320;
/** Iterable's limit on userId length (NOTES.md, Identifiers). */
export const MAX_USER_ID_CHARS = 52;
/** Width of identifier columns in state tables; longer values are invalid and cut for reports. */
export const STORED_CHARS = 400;

export interface PlanTables {
  rows: string;
  members: string;
  plan: string;
  outcomes: string;
  snap: string;
  /** the committed snapshot to diff against; null on a first run / changed list / full resync */
  previous: string | null;
  /** how `previous` keeps its identities (snapshotFormOf); "identity" when absent */
  previousForm?: SnapshotForm;
}

/**
 * How a snapshot keeps each member's identity:
 * - "identity": in an `identity` column (PostgreSQL and MySQL, which index it for the diff, and
 *   DuckDB snapshots of earlier versions);
 * - "by_user": a boolean `by_user` instead, true when the identity is `'u:' || user_id`, false
 *   when it is `'e:' || email` (DuckDB). A member's identity is always one of the two: its userId
 *   or its email, normalised, as the member keeps them (identitySql). Written on the run's own
 *   cores while sending goes on (src/sources/speculate.ts), a snapshot of 1M members costs DuckDB
 *   ~0.13 s of CPU less without the identity column, and takes ~30% less of the file (1M hybrid
 *   members: 11.5 MB instead of 16 MB).
 *   The flag, rather than the rule that made the identity, keeps an old snapshot readable if the
 *   rule ever changes.
 */
export type SnapshotForm = "identity" | "by_user";

/** The form in which this dialect writes snapshots. */
export function snapshotFormFor(d: Dialect): SnapshotForm {
  return d.name === "duckdb" ? "by_user" : "identity";
}

/** The form of an existing snapshot, from its column names. */
export function snapshotFormOf(columns: readonly string[]): SnapshotForm {
  return columns.some((c) => c.toLowerCase() === "identity") ? "identity" : "by_user";
}

/** A snapshot's rows as (identity, email, user_id), whatever its form: a table name or a
 *  parenthesised select, to use under an alias. */
export function snapshotRowsSql(
  d: Dialect,
  schema: string,
  table: string,
  form: SnapshotForm = "identity",
): string {
  const snap = d.table(schema, table);
  if (form === "identity") return snap;
  const identity = `case when z.by_user then ${concat(d, "'u:'", "z.user_id")} else ${concat(d, "'e:'", "z.email")} end`;
  return `(select ${identity} as identity, z.email, z.user_id from ${snap} z)`;
}

/** The previous snapshot of a plan as (identity, email, user_id) rows (snapshotRowsSql). */
function previousRows(d: Dialect, schema: string, t: PlanTables): string {
  if (t.previous === null) throw new TypeError("the plan has no previous snapshot");
  return snapshotRowsSql(d, schema, t.previous, t.previousForm);
}

export interface RowsSpec {
  modelSql: string;
  projectType: ProjectType;
  emailColumn?: string | undefined;
  userIdColumn?: string | undefined;
  /** Boolean SQL over (email, userId): the row is sent as built JSON (src/planner/bulk.ts
   *  buildableSql). Given for a plan without a previous snapshot, whose plan is its members as
   *  they are (see buildPlanSql); absent, `built` is 0 and the diff decides it. */
  buildable?: ((e: string, u: string) => string) | undefined;
}

// ---------------------------------------------------------------- dialect details the planner needs

/** DuckDB catalog of the run-scoped work tables (see the file header). */
export const DUCKDB_WORK_CATALOG = "audience_sync_work";

/** Statements that make the work tables' home exist (DuckDB: attach the in-memory catalog). */
export function workSetupSql(d: Dialect, schema: string): string[] {
  if (d.name !== "duckdb") return [];
  const catalog = d.quoteIdent(DUCKDB_WORK_CATALOG);
  return [
    `ATTACH IF NOT EXISTS ':memory:' AS ${catalog}`,
    `CREATE SCHEMA IF NOT EXISTS ${catalog}.${d.quoteIdent(schema)}`,
  ];
}

/** Whether the plan is a view over the members rather than a table (see buildPlanSql). */
export function planIsView(d: Dialect, t: PlanTables): boolean {
  return !t.previous && d.name === "duckdb";
}

/** Qualified name of a run-scoped work table (rows, members, plan). */
export function workTable(d: Dialect, schema: string, name: string): string {
  return d.name === "duckdb"
    ? `${d.quoteIdent(DUCKDB_WORK_CATALOG)}.${d.table(schema, name)}`
    : d.table(schema, name);
}

export function concat(d: Dialect, ...parts: string[]): string {
  return d.name === "mysql" ? `concat(${parts.join(", ")})` : `(${parts.join(" || ")})`;
}

/** NULL-safe equality. */
export function same(d: Dialect, a: string, b: string): string {
  return d.name === "mysql" ? `(${a} <=> ${b})` : `(${a} is not distinct from ${b})`;
}

/** DuckDB's type of identifiers in tables kept after the run (snapshots, sync logs): FSST named,
 *  since DuckDB otherwise tries every compression method on each write (1M snapshot rows written
 *  in ~0.6 s instead of ~1.1 s; uncompressed would be ~0.35 s but twice the size). */
export const DUCKDB_STORED_KEY_TYPE = "varchar using compression fsst";

function storedKeyType(d: Dialect): string {
  return d.name === "duckdb" ? DUCKDB_STORED_KEY_TYPE : keyType(d);
}

/** Column type of identifiers: binary comparison everywhere (MySQL's default collations fold case). */
export function keyType(d: Dialect): string {
  switch (d.name) {
    case "mysql":
      return `varchar(${STORED_CHARS}) character set utf8mb4 collate utf8mb4_bin`;
    case "postgres":
      return `text collate "C"`;
    default:
      return "varchar";
  }
}

function intType(d: Dialect): string {
  return d.name === "duckdb" ? "integer" : "int";
}

function tableOptions(d: Dialect): string {
  return d.name === "mysql" ? " engine=InnoDB default charset=utf8mb4 collate=utf8mb4_bin" : "";
}

function createTable(d: Dialect, table: string, columns: [string, string][]): string {
  const cols = columns.map(([name, type]) => `${d.quoteIdent(name)} ${type}`).join(", ");
  return `create table ${table} (${cols})${tableOptions(d)}`;
}

/** A run-scoped work table (rows, members, plan). PostgreSQL: unlogged, since a work table never
 *  outlives its run (a crash leaves it to be dropped by the next run), and writing the WAL for 1M
 *  rows cost more than the rest of the rows statement. */
function createWorkTable(d: Dialect, table: string, columns: [string, string][]): string {
  const sql = createTable(d, table, columns);
  return d.name === "postgres" ? sql.replace(/^create table /, "create unlogged table ") : sql;
}

/** Renames a table within the schema (a catalog change: nothing is copied). */
function renameTable(d: Dialect, schema: string, from: string, to: string): string {
  if (d.name === "mysql") {
    return `rename table ${d.table(schema, from)} to ${d.table(schema, to)}`;
  }
  return `alter table ${workTable(d, schema, from)} rename to ${d.quoteIdent(to)}`;
}

/** Columns of rows and members: a row is a member of one row until grouped. `built`: see
 *  RowsSpec.buildable. */
function memberColumns(d: Dialect): [string, string][] {
  return [
    ["identity", keyType(d)],
    ["email", keyType(d)],
    ["user_id", keyType(d)],
    ["row_count", intType(d)],
    ["built", intType(d)],
  ];
}

const MEMBER_COLUMNS = "identity, email, user_id, row_count, built";

/** An index on `identity`: MySQL/MariaDB join by nested loops without one; DuckDB needs none. */
export function identityIndex(d: Dialect, schema: string, table: string): string[] {
  if (d.name === "duckdb") return [];
  const idx = d.quoteIdent(`${table}_identity_idx`.slice(0, 60));
  return [`create index ${idx} on ${d.table(schema, table)} (${d.quoteIdent("identity")})`];
}

/** PostgreSQL: statistics of a freshly filled work table. Without them the planner guesses
 *  billions of rows, and then rescans subqueries instead of hashing them (measured: 10 s instead of
 *  0.3 s for the plan of 1M rows). Autovacuum would only catch up after the run. */
export function analyzeSql(d: Dialect, table: string): string[] {
  return d.name === "postgres" ? [`analyze ${table}`] : [];
}

// ---------------------------------------------------------------- identity rules in SQL

/**
 * userId validity as SQL; must agree with userIdProblem() in src/identity (property-tested):
 * 1 to MAX_USER_ID_CHARS printable ASCII characters, no space at either end. DuckDB says it in one
 * regular expression (a printable non-space character, then up to MAX - 2 printable ones and a
 * printable non-space one), cheaper than the five tests it replaces. On PostgreSQL a printable
 * ASCII value has as many bytes as characters, so the length is checked in bytes (O(1)).
 */
export function validUserIdSql(d: Dialect, u: string): string {
  if (d.name === "duckdb") {
    return `regexp_full_match(${u}, '[!-~]([ -~]{0,${MAX_USER_ID_CHARS - 2}}[!-~])?')`;
  }
  const len = d.name === "postgres" ? `octet_length(${u})` : d.length(u);
  return `(${u} is not null and ${len} between 1 and ${MAX_USER_ID_CHARS} and ${d.isPrintableAscii(u)} and ${u} not like ' %' and ${u} not like '% ')`;
}

/** Boolean: `x` (not NULL) has at most `max` characters; the byte length (O(1)) decides most values. */
function atMostChars(d: Dialect, x: string, max: number): string {
  if (d.name === "duckdb") return `(strlen(${x}) <= ${max} or length(${x}) <= ${max})`;
  if (d.name === "postgres") return `(octet_length(${x}) <= ${max} or char_length(${x}) <= ${max})`;
  return `${d.length(x)} <= ${max}`;
}

/** Identity of a row per project type; NULL when the row has no usable identifier. Emails are only
 *  normalised here (their validity is judged in TypeScript when the row leaves the warehouse). */
export function identitySql(d: Dialect, projectType: ProjectType, e: string, u: string): string {
  const byEmail = `when ${e} is not null and ${atMostChars(d, e, MAX_EMAIL_CHARS)} then ${concat(d, "'e:'", e)}`;
  const byUser = `when ${validUserIdSql(d, u)} then ${concat(d, "'u:'", u)}`;
  switch (projectType) {
    case "email":
      return `case ${byEmail} end`;
    case "userId":
      return `case ${byUser} end`;
    case "hybrid":
      return `case ${byUser} ${byEmail} end`;
  }
}

/**
 * `d.trimLower(x)`, with a fast path: DuckDB's trim() over the 25-character JS whitespace set,
 * and PostgreSQL's btrim() + lower() (ICU), cost several times the rest of the rows statement.
 * A value that starts and ends with a printable, non-space ASCII character has nothing to trim
 * (every character of the set is a control character, a space or non-ASCII), so it only needs
 * lower(). DuckDB's lower() is the one of the slow path; on PostgreSQL the fast path also wants an
 * all-ASCII value (octet_length = char_length, so that the last byte is the last character) and
 * lowers it in the "C" collation, which maps A-Z only: what toLowerCase() does to ASCII.
 * ord() and x[-1] (code points) are several times cheaper on DuckDB than ascii() and right().
 */
export function trimLowerFast(d: Dialect, x: string): string {
  if (d.name === "duckdb") {
    return `case when ord(${x}) between 33 and 126 and ord(${x}[-1]) between 33 and 126 then lower(${x}) else ${d.trimLower(x)} end`;
  }
  if (d.name === "postgres") {
    const slow = d.trimLower(x);
    // Both branches of a CASE must carry the same explicit collation: the slow one may be ICU's.
    const icu = slow.includes('"und-x-icu"') ? ' collate "und-x-icu"' : "";
    const lowerC = `lower(${x} collate "C")${icu}`;
    const ascii = `octet_length(${x}) = char_length(${x}) and ascii(${x}) between 33 and 126`;
    if (slow.includes("\\u00a0")) {
      // UTF8 (the trim set names non-ASCII spaces): the last byte of an ASCII value is its last
      // character, read by get_byte() from the value's bytes (textsend(); a nonempty ASCII value in
      // any client encoding), where right() and substr() walk the characters. Nested so that
      // get_byte() only sees a nonempty value.
      return (
        `case when ${ascii} then case when get_byte(textsend(${x}), octet_length(${x}) - 1) between 33 and 126 ` +
        `then ${lowerC} else ${slow} end else ${slow} end`
      );
    }
    // The last character compared in the "C" collation, as ascii() tests the first.
    return `case when ${ascii} and right(${x} collate "C", 1) between '!' and '~' then ${lowerC} else ${slow} end`;
  }
  return d.trimLower(x);
}

// ---------------------------------------------------------------- statements of one plan

/** Materialises the model with normalised identifiers and identity. */
export function buildRowsSql(d: Dialect, schema: string, t: PlanTables, spec: RowsSpec): string[] {
  const q = (c: string) => `m.${d.quoteIdent(c)}`;
  const emailExpr = spec.emailColumn
    ? `nullif(${trimLowerFast(d, d.castText(q(spec.emailColumn)))}, '')`
    : "null";
  // '' is no userId (as in src/identity normalizeUserId); a padded one is invalid, not absent.
  const userExpr = spec.userIdColumn ? `nullif(${d.castText(q(spec.userIdColumn))}, '')` : "null";
  const cut = (x: string) => (d.name === "mysql" ? `left(${x}, ${STORED_CHARS})` : x);
  const rows = workTable(d, schema, t.rows);
  // PostgreSQL inlines the subquery n and would normalise each email once per use of n.e (four
  // times); OFFSET 0 keeps it a subquery whose columns are computed once per row.
  const fence = d.name === "postgres" ? " offset 0" : "";
  return [
    d.dropTable(rows),
    createWorkTable(d, rows, memberColumns(d)),
    `insert into ${rows} (${MEMBER_COLUMNS}) ` +
      `select ${identitySql(d, spec.projectType, "n.e", "n.u")}, ${cut("n.e")}, ${cut("n.u")}, 1, ` +
      `${spec.buildable ? `case when ${spec.buildable("n.e", "n.u")} then 1 else 0 end` : "0"} ` +
      `from (select ${emailExpr} as e, ${userExpr} as u from (\n${spec.modelSql}\n) m${fence}) n`,
  ];
}

/**
 * A 64-bit hash of a text, for counting distinct values cheaply: as many distinct hashes as values
 * proves the values distinct; a collision only sends the plan down the slower, general path.
 * MySQL has no 64-bit text hash: the text itself.
 */
function distinctKey(d: Dialect, x: string): string {
  // DuckDB hashes NULL too: it must stay NULL, which count() skips.
  if (d.name === "duckdb") return `case when ${x} is not null then hash(${x}) end`;
  if (d.name === "postgres") return `hashtextextended(${x}, 0)`;
  return x;
}

/**
 * What decides how members are built: rows, valid rows, distinct identities (a lower bound: see
 * distinctKey), and (hybrid) whether two valid rows may share an email (only then can a merge or
 * a shared email follow).
 */
export function rowStatsSql(
  d: Dialect,
  schema: string,
  t: PlanTables,
  projectType: ProjectType,
): string {
  const emails =
    projectType === "hybrid"
      ? ", count(case when identity is not null then email end) as email_count, " +
        `count(distinct case when identity is not null then ${distinctKey(d, "email")} end) as distinct_email_count`
      : "";
  return (
    `select count(*) as row_count, count(identity) as valid_count, ` +
    `count(distinct ${distinctKey(d, "identity")}) as identity_count${emails} from ${workTable(d, schema, t.rows)}`
  );
}

/** Rows and valid rows only, for a plan that checks identities after the diff (uniqueCheckSql). */
export function rowCountsSql(d: Dialect, schema: string, t: PlanTables): string {
  const rows = workTable(d, schema, t.rows);
  if (d.name === "duckdb") {
    // DuckDB keeps row counts and whether a column holds NULLs: both answers come from metadata
    // where count(identity) reads the column.
    return (
      `select (select count(*) from ${rows}) as row_count, ` +
      `(select count(*) from ${rows}) - (select count(*) from ${rows} where identity is null) as valid_count`
    );
  }
  return `select count(*) as row_count, count(identity) as valid_count from ${rows}`;
}

/**
 * Members when no identity repeats (rowStatsSql: valid rows = distinct identities): every valid
 * row is its own member with the values it has, which is what grouping would give. The rows table
 * becomes the members table; a new rows table holds the invalid rows, moved out of members.
 * Hybrid, when two valid rows share an email (`mergeEmails`): an email-only member whose email a
 * userId member carries merges into it, as in buildMembersSql (with one row per identity, the
 * userId rows' emails are the userId members' emails).
 */
export function membersFromUniqueRowsSql(
  d: Dialect,
  schema: string,
  t: PlanTables,
  opts: { invalid: boolean; mergeEmails: boolean },
): string[] {
  const rows = workTable(d, schema, t.rows);
  const members = workTable(d, schema, t.members);
  const cols = MEMBER_COLUMNS;
  const stmts = [
    d.dropTable(members),
    renameTable(d, schema, t.rows, t.members),
    createWorkTable(d, rows, memberColumns(d)),
  ];
  if (opts.invalid) {
    stmts.push(
      `insert into ${rows} (${cols}) select ${cols} from ${members} where identity is null`,
      `delete from ${members} where identity is null`,
    );
  }
  if (opts.mergeEmails) stmts.push(mergeEmailOnlyMembersSql(d, schema, t));
  return [
    ...stmts,
    ...(d.name === "mysql" ? identityIndex(d, schema, t.members) : []),
    // PostgreSQL: the diff and the snapshot hash members whatever its statistics say (the row
    // count is estimated from the table's size), and ANALYZE cost ~0.1 s per 1M rows; the
    // shared-email steps after a merge group by email, and get statistics.
    ...(opts.mergeEmails ? analyzeSql(d, members) : []),
  ];
}

/** Hybrid, members of one row each: an email-only member whose email a userId member carries
 *  merges into it (see membersFromUniqueRowsSql). */
export function mergeEmailOnlyMembersSql(d: Dialect, schema: string, t: PlanTables): string {
  const members = workTable(d, schema, t.members);
  // The derived table z is materialised first, which MySQL needs to delete from the table it reads.
  return (
    `delete from ${members} where identity like 'e:%' and email in ` +
    `(select email from (select email from ${members} where identity like 'u:%' and email is not null) z)`
  );
}

/** Puts the members back into the rows table, which then holds every row again (for grouping). */
export function restoreRowsSql(d: Dialect, schema: string, t: PlanTables): string {
  const cols = MEMBER_COLUMNS;
  return (
    `insert into ${workTable(d, schema, t.rows)} (${cols}) ` +
    `select ${cols} from ${workTable(d, schema, t.members)}`
  );
}

/**
 * One member per identity. Rows of one identity merge (a NULL identifier takes the other row's
 * value); two different non-NULL values conflict, the smallest wins and the other rows are
 * reported as `duplicate_identity`. Hybrid: an email-only row whose email a userId row carries is
 * the same Iterable user (Iterable matches both) and merges into that member.
 */
export function buildMembersSql(
  d: Dialect,
  schema: string,
  t: PlanTables,
  projectType: ProjectType,
  buildable?: (e: string, u: string) => string,
): string[] {
  const rows = workTable(d, schema, t.rows);
  const members = workTable(d, schema, t.members);
  // decided on the member's values, which a merge may have taken from several rows
  const built = buildable
    ? `case when ${buildable("min(r.email)", "min(r.user_id)")} then 1 else 0 end`
    : "0";
  const group = (where: string) =>
    `select r.identity, min(r.email), min(r.user_id), count(*), ${built} from ${rows} r where ${where} group by r.identity`;
  // Hybrid: userId members, then email-only members whose email no userId row carries. Two
  // groupings over disjoint identities are cheaper than one with a correlated test on every row.
  const select =
    projectType === "hybrid"
      ? `${group("r.identity like 'u:%'")} union all ${group(`r.identity like 'e:%' and not exists (select 1 from ${rows} r2 where r2.identity like 'u:%' and r2.email = r.email)`)}`
      : group("r.identity is not null");
  return [
    d.dropTable(members),
    createWorkTable(d, members, memberColumns(d)),
    `insert into ${members} (${MEMBER_COLUMNS}) ${select}`,
    // PostgreSQL hashes every join on members; an index there cost more to build than it saved.
    ...(d.name === "mysql" ? identityIndex(d, schema, t.members) : []),
    ...analyzeSql(d, members),
  ];
}

/**
 * Hybrid: how many userId members carry an email that a smaller userId member carries too.
 * Iterable keeps emails unique, so it would refuse all but one of them (conflictEmails) and the
 * answer names only the email: they are dropped from the members and reported as duplicates.
 */
export function sharedEmailCountSql(d: Dialect, schema: string, t: PlanTables): string {
  const members = workTable(d, schema, t.members);
  return (
    `select coalesce(sum(c - 1), 0) as n from (select count(*) as c from ${members} ` +
    `where identity like 'u:%' and email is not null group by email having count(*) > 1) z`
  );
}

/** The userId members that lose a shared email: all but the smallest identity per email. */
function sharedEmailLosers(members: string): string {
  // The derived table z is materialised first, which MySQL needs to delete from the table it reads.
  return (
    `select identity from (select identity, ` +
    `row_number() over (partition by email order by identity) as rn from ${members} ` +
    `where identity like 'u:%' and email is not null) z where z.rn > 1`
  );
}

export function dropSharedEmailSql(d: Dialect, schema: string, t: PlanTables): string {
  const members = workTable(d, schema, t.members);
  return `delete from ${members} where identity in (${sharedEmailLosers(members)})`;
}

/** Before dropSharedEmailSql, when the rows table was renamed to members (membersFromUniqueRowsSql):
 *  the losers' rows, for the duplicate-rows stream. */
export function keepSharedEmailLosersSql(d: Dialect, schema: string, t: PlanTables): string {
  const members = workTable(d, schema, t.members);
  const cols = MEMBER_COLUMNS;
  return (
    `insert into ${workTable(d, schema, t.rows)} (${cols}) select ${cols} from ${members} ` +
    `where identity in (${sharedEmailLosers(members)})`
  );
}

/**
 * Whether subscribe `p` reaches the Iterable user that unsubscribe `s` names, so that the
 * unsubscribe must not be sent: Iterable matches a subscriber by userId when it has one, else by
 * email. An email-only member re-subscribed with the same email (with or without a new userId),
 * or a userId member whose row lost its userId and is subscribed by its email, is the same user.
 * Two different userIds are two users even when they share an email.
 */
function samePerson(p: string, s: string): string {
  return `${p}.email = ${s}.email and (${s}.identity like 'e:%' or ${p}.identity like 'e:%')`;
}

/**
 * The plan: subscribes for added and changed members, unsubscribes for removed ones.
 * `built` marks the records the warehouse sends as built JSON (1) from those that go record by
 * record (0): `opts.buildable(email, userId)` is the boolean SQL that decides (src/planner/bulk.ts),
 * or absent where the warehouse builds no bodies. Decided once, in the diff, for subscribes and
 * unsubscribes alike; without a previous snapshot, by the rows statement (RowsSpec.buildable).
 *
 * Without a previous snapshot every member is subscribed. DuckDB then makes the plan a view over
 * the members rather than a copy of them (the members' rowid numbers the built batches):
 * planIsView says which to drop.
 */
export function buildPlanSql(
  d: Dialect,
  schema: string,
  t: PlanTables,
  opts: { resendAll?: boolean; buildable?: (e: string, u: string) => string } = {},
): string[] {
  const members = workTable(d, schema, t.members);
  const plan = workTable(d, schema, t.plan);
  const cols = "identity, op, kind, email, user_id, send, built";
  const built = (e: string, u: string) =>
    opts.buildable ? `case when ${opts.buildable(e, u)} then 1 else 0 end` : "0";
  if (planIsView(d, t)) {
    return [
      `create view ${plan} as select m.rowid as rowid, m.identity, 'subscribe' as op, 'added' as kind, ` +
        `m.email, m.user_id, 1 as send, m.built from ${members} m`,
    ];
  }
  const stmts = [
    createWorkTable(d, plan, [
      ["identity", keyType(d)],
      ["op", "varchar(12)"],
      ["kind", "varchar(12)"],
      ["email", keyType(d)],
      ["user_id", keyType(d)],
      ["send", intType(d)],
      ["built", intType(d)],
    ]),
  ];
  if (!t.previous) {
    stmts.push(
      `insert into ${plan} (${cols}) ` +
        `select m.identity, 'subscribe', 'added', m.email, m.user_id, 1, m.built from ${members} m`,
    );
    return stmts;
  }
  const prev = previousRows(d, schema, t);
  // An unsubscribe of a person this run subscribes again is not sent (samePerson): unsubscribes
  // run first, and Iterable would match both to one user. Uncorrelated IN tests rather than
  // EXISTS with OR: each is hashed once (PostgreSQL: a hashed SubPlan; DuckDB: a mark join),
  // where the correlated form rescans the subscribes for every unsubscribe. NULL counts as no.
  const resubscribed = (x: string, from: string) =>
    `(${x}.identity like 'e:%' and ${x}.email in (select p.email from ${from} p where p.op = 'subscribe')) or ` +
    `(${x}.identity like 'u:%' and ${x}.email in (select p.email from ${from} p where p.op = 'subscribe' and p.identity like 'e:%'))`;
  // A full resync sends every member again; removed members are still unsubscribed.
  const changed = (m: string, s2: string) =>
    opts.resendAll
      ? "1 = 1"
      : `not (${same(d, `${m}.email`, `${s2}.email`)} and ${same(d, `${m}.user_id`, `${s2}.user_id`)})`;
  if (d.name !== "mysql") {
    // One full outer join of members and snapshot gives both sides of the diff in one pass
    // (MySQL has no FULL JOIN: it takes the two statements below).
    stmts.push(
      `insert into ${plan} (${cols}) ` +
        `with diff as materialized (select coalesce(m.identity, s.identity) as identity, ` +
        `case when m.identity is null then 'unsubscribe' else 'subscribe' end as op, ` +
        `case when m.identity is null then 'removed' when s.identity is null then 'added' else 'changed' end as kind, ` +
        `case when m.identity is null then s.email else m.email end as email, ` +
        `case when m.identity is null then s.user_id else m.user_id end as user_id ` +
        `from ${members} m full outer join ${prev} s on s.identity = m.identity ` +
        `where m.identity is null or s.identity is null or ${changed("m", "s")}) ` +
        `select x.identity, x.op, x.kind, x.email, x.user_id, ` +
        `case when x.op = 'unsubscribe' and (${resubscribed("x", "diff")}) then 0 else 1 end, ` +
        `${built("x.email", "x.user_id")} from diff x`,
      ...identityIndex(d, schema, t.plan),
      ...analyzeSql(d, plan),
    );
    return stmts;
  }
  stmts.push(
    `insert into ${plan} (${cols}) ` +
      `select m.identity, 'subscribe', case when s.identity is null then 'added' else 'changed' end, m.email, m.user_id, 1, ` +
      `${built("m.email", "m.user_id")} ` +
      `from ${members} m left join ${prev} s on s.identity = m.identity ` +
      `where s.identity is null or ${changed("m", "s")}`,
    ...identityIndex(d, schema, t.plan),
    `insert into ${plan} (${cols}) ` +
      `select s.identity, 'unsubscribe', 'removed', s.email, s.user_id, ` +
      `case when ${resubscribed("s", plan)} then 0 else 1 end, 0 ` +
      `from ${prev} s where not exists (select 1 from ${members} m where m.identity = s.identity)`,
  );
  return stmts;
}

/**
 * Whether a plan built from the rows as they are (membersFromUniqueRowsSql, no grouping) was right:
 * no identity repeats, and (hybrid) no two members share an email. Checked from the plan instead of
 * by counting distinct values over every row.
 *
 * Identities: a snapshot holds each identity once (it is built from members, one per identity).
 * In the diff each member is either added (A) or matches one snapshot row, and each of the S
 * snapshot rows is either removed (R) or matched: with V members, V - A members matched S - R
 * snapshot rows, which are as many iff no two members matched the same snapshot row. The added
 * identities are distinct iff `added_identities` = A. So identities are distinct iff
 * V = A + S - R and added_identities = A.
 *
 * Emails (hybrid), given a snapshot in which no two rows share an email (DISTINCT_EMAILS_NOTE):
 * an unchanged member carries the email of the one snapshot row it matched, so unchanged members
 * share no email; what is left is the subscribed members (sent): distinct among themselves
 * (`distinct_sent_emails` = `sent_emails`), and carried by no unchanged member. An unchanged
 * member's snapshot row is the one snapshot row the plan does not name (neither changed nor
 * removed) with the same email: `unchanged_on_sent_emails` = 0. (The snapshot, in the database
 * file, is cheaper to read than the members, which may have spilled to disk.)
 */
export function uniqueCheckSql(d: Dialect, schema: string, t: PlanTables, hybrid: boolean): string {
  const plan = workTable(d, schema, t.plan);
  const prev = previousRows(d, schema, t);
  // Separate subqueries: PostgreSQL scans the snapshot in parallel for each, where one pass with a
  // correlated test per row was estimated so dear that JIT compiled it with inlining (0.15 s).
  const cols = [
    `(select count(*) from ${prev}) as previous_count`,
    `(select count(distinct identity) from ${plan} where kind = 'added') as added_identities`,
  ];
  if (hybrid) {
    const sent = `from ${plan} where op = 'subscribe'`;
    cols.push(
      `(select count(email) ${sent}) as sent_emails`,
      `(select count(distinct email) ${sent}) as distinct_sent_emails`,
      `(select count(*) from ${prev} s where s.email in (select p.email from ${plan} p where p.op = 'subscribe') ` +
        `and not exists (select 1 from ${plan} p where p.identity = s.identity)) as unchanged_on_sent_emails`,
    );
  }
  return `select ${cols.join(", ")}`;
}

/** Counts for the report: distinct members and those merged from several rows (rows and invalid
 *  rows come from rowStatsSql; the previous snapshot's size follows from the plan). */
export function memberCountsSql(d: Dialect, schema: string, t: PlanTables): string {
  return (
    `select count(*) as member_count, count(case when row_count > 1 then 1 end) as multi_count ` +
    `from ${workTable(d, schema, t.members)}`
  );
}

/** The plan by op/kind/send, for the report. */
export function planCountsSql(d: Dialect, schema: string, t: PlanTables): string {
  return `select op, kind, send, count(*) as n from ${workTable(d, schema, t.plan)} group by op, kind, send`;
}

/** Rows without a usable identity, for validation messages and the report. */
export function invalidRowsSql(d: Dialect, schema: string, t: PlanTables): string {
  return `select email, user_id from ${workTable(d, schema, t.rows)} where identity is null`;
}

/** Rows that lost a duplicate conflict (another row of the same identity carries other values). */
export function duplicateRowsSql(
  d: Dialect,
  schema: string,
  t: PlanTables,
  kinds: { conflicts: boolean; sharedEmail: boolean } = { conflicts: true, sharedEmail: true },
): string | null {
  const rows = workTable(d, schema, t.rows);
  const members = workTable(d, schema, t.members);
  const parts: string[] = [];
  if (kinds.conflicts) {
    parts.push(
      `select r.identity, r.email, r.user_id, m.email as kept_email, m.user_id as kept_user_id from ${rows} r join ${members} m on m.identity = r.identity ` +
        `where m.row_count > 1 and ((r.email is not null and m.email <> r.email) or (r.user_id is not null and m.user_id <> r.user_id))`,
    );
  }
  if (kinds.sharedEmail) {
    parts.push(
      `select r.identity, r.email, r.user_id, k.email as kept_email, k.user_id as kept_user_id from ${rows} r join ${members} k on k.email = r.email and k.identity like 'u:%' ` +
        `where r.identity like 'u:%' and not exists (select 1 from ${members} m where m.identity = r.identity)`,
    );
  }
  return parts.length > 0 ? parts.join(" union all ") : null;
}

/** The records to deliver for one operation, in a stable order. `unbuilt`: only those not sent
 *  in built bodies (the plan's `built` column, src/planner/bulk.ts). */
export function planRecordsSql(
  d: Dialect,
  schema: string,
  t: PlanTables,
  op: "subscribe" | "unsubscribe",
  opts: { unbuilt?: boolean } = {},
): string {
  return (
    `select identity, kind, email, user_id from ${workTable(d, schema, t.plan)} ` +
    `where op = '${op}' and send = 1${opts.unbuilt ? " and built = 0" : ""} order by identity`
  );
}

/** Table of per-record outcomes written during delivery. `confirmed = 1` marks an outcome the
 *  snapshot may take as done (success, or a failure committed as if synced). */
export function buildOutcomesTableSql(d: Dialect, schema: string, t: PlanTables): string[] {
  const outcomes = workTable(d, schema, t.outcomes);
  return [
    d.dropTable(outcomes),
    createWorkTable(d, outcomes, [
      ["identity", keyType(d)],
      ["op", "varchar(12)"],
      ["email", keyType(d)],
      ["user_id", keyType(d)],
      ["status", "varchar(12)"],
      ["confirmed", intType(d)],
      ["error_code", "varchar(40)"],
      ["error_message", d.name === "mysql" ? "text" : "varchar"],
    ]),
  ];
}

export const OUTCOME_COLUMNS = [
  "identity",
  "op",
  "email",
  "user_id",
  "status",
  "confirmed",
  "error_code",
  "error_message",
] as const;

/** How many planned subscribes have a confirmed outcome (each has one outcome at most; rows
 *  without an identity and duplicate losers are keyed `row:` and `dup:`, never `e:` or `u:`). */
export function confirmedSubscribesSql(d: Dialect, schema: string, t: PlanTables): string {
  return (
    `select count(*) as n from ${workTable(d, schema, t.outcomes)} ` +
    `where op = 'subscribe' and confirmed = 1 and (identity like 'e:%' or identity like 'u:%')`
  );
}

/** `exists` test: the plan row `alias` has a confirmed outcome for `op`. */
function confirmedSql(d: Dialect, schema: string, t: PlanTables) {
  const outcomes = workTable(d, schema, t.outcomes);
  return (alias: string, op: string) =>
    `exists (select 1 from ${outcomes} o where o.identity = ${alias}.identity and o.op = '${op}' and o.confirmed = 1)`;
}

/** When the next snapshot keeps a previous snapshot row `s` instead of the member: for the
 *  changed member `p` whose subscribe was not confirmed, and for the unsubscribe `p` that was not
 *  confirmed or that was superseded by a subscribe that was not confirmed. With every planned
 *  subscribe confirmed (`allSubscribesConfirmed`), only unconfirmed unsubscribes keep theirs: the
 *  outcomes table then need not hold the subscribes' outcomes (built batches taken whole). */
function keptPreviousRows(
  d: Dialect,
  schema: string,
  t: PlanTables,
  allSubscribesConfirmed: boolean,
) {
  const plan = workTable(d, schema, t.plan);
  const confirmed = confirmedSql(d, schema, t);
  const unconfirmedUnsubscribe = (p: string) =>
    `(${p}.send = 1 and not ${confirmed(p, "unsubscribe")})`;
  if (allSubscribesConfirmed) {
    return { changed: () => "false", removed: (p: string) => unconfirmedUnsubscribe(p) };
  }
  return {
    changed: (p: string) => `not ${confirmed(p, "subscribe")}`,
    removed: (p: string, s: string) =>
      `(${unconfirmedUnsubscribe(p)} or (${p}.send = 0 and not exists (select 1 from ${plan} p2 where p2.op = 'subscribe' and ${samePerson("p2", s)} and ${confirmed("p2", "subscribe")})))`,
  };
}

/**
 * How many previous snapshot rows the next snapshot keeps (buildSnapshotSql). Every other row of
 * the next snapshot is a member; members never share an email (hybrid: merged or dropped, email
 * projects: the email is the identity), so with none kept, no two snapshot rows share an email.
 * An unsubscribe carries its snapshot row's identity and email, so `p` stands for `s`.
 */
export function keptPreviousCountSql(
  d: Dialect,
  schema: string,
  t: PlanTables,
  opts: { allSubscribesConfirmed?: boolean } = {},
): string {
  const keeps = keptPreviousRows(d, schema, t, opts.allSubscribesConfirmed === true);
  return (
    `select count(*) as n from ${workTable(d, schema, t.plan)} p where ` +
    `(p.op = 'subscribe' and p.kind = 'changed' and ${keeps.changed("p")}) or (p.op = 'unsubscribe' and ${keeps.removed("p", "p")})`
  );
}

/** The comment of a snapshot table in which no two rows share an email (uniqueCheckSql relies on it). */
export const DISTINCT_EMAILS_NOTE = "audience-sync: no two rows share an email";

/** Writes `note` as the comment of a table of the state schema; null where the dialect keeps none
 *  (MySQL: a table comment is an ALTER TABLE). */
export function setTableNoteSql(
  d: Dialect,
  schema: string,
  table: string,
  note: string,
): string | null {
  if (d.name === "mysql") return null;
  return `comment on table ${d.table(schema, table)} is ${d.literal(note)}`;
}

/** The comment of a table of the state schema ($1 schema, $2 table), as `note`; no row or NULL if none. */
export function tableNoteSql(d: Dialect): string | null {
  if (d.name === "duckdb") {
    return `select comment as note from duckdb_tables() where database_name = current_database() and schema_name = $1 and table_name = $2`;
  }
  if (d.name === "postgres") {
    return `select obj_description(c.oid, 'pg_class') as note from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relname = $2`;
  }
  return null;
}

/**
 * The new snapshot: the baseline is the last confirmed success. It holds
 * - members nothing was sent for (unchanged),
 * - planned subscribes whose outcome is confirmed (new identifiers),
 * - for a changed member whose subscribe was not confirmed: its previous snapshot row,
 * - removed members whose unsubscribe was not confirmed (kept, so it is retried), and superseded
 *   unsubscribes whose superseding subscribe was not confirmed.
 * A run that stops before this statement leaves the previous snapshot as the baseline.
 */
export function buildSnapshotSql(
  d: Dialect,
  schema: string,
  t: PlanTables,
  opts: { allSubscribesConfirmed?: boolean } = {},
): string[] {
  const members = workTable(d, schema, t.members);
  const plan = workTable(d, schema, t.plan);
  const confirmed = confirmedSql(d, schema, t);
  // Every planned subscribe confirmed (allSubscribesConfirmed, see confirmedSubscribesSql): the
  // members as they are, since a subscribe carries its member's values. Two joins fewer.
  const parts = opts.allSubscribesConfirmed
    ? [allMembersSql(members)]
    : [
        `select m.identity, m.email, m.user_id from ${members} m where not exists (select 1 from ${plan} p where p.identity = m.identity and p.op = 'subscribe')`,
        `select p.identity, p.email, p.user_id from ${plan} p where p.op = 'subscribe' and ${confirmed("p", "subscribe")}`,
      ];
  if (t.previous) {
    const prev = previousRows(d, schema, t);
    const all = opts.allSubscribesConfirmed === true;
    const keeps = keptPreviousRows(d, schema, t, all);
    if (!all) {
      parts.push(
        `select s.identity, s.email, s.user_id from ${prev} s join ${plan} p on p.identity = s.identity and p.op = 'subscribe' and p.kind = 'changed' where ${keeps.changed("p")}`,
      );
    }
    parts.push(
      `select s.identity, s.email, s.user_id from ${prev} s join ${plan} p on p.identity = s.identity and p.op = 'unsubscribe' ` +
        `where ${keeps.removed("p", "s")}`,
    );
  }
  return snapshotFromSql(d, schema, t, parts.join(" union all "));
}

/**
 * The next snapshot as the members stand: what buildSnapshotSql builds when every planned
 * subscribe was confirmed and no previous row is kept (keptPreviousCountSql says 0). Needs no
 * outcome, so it can be built while sending goes on (src/sources/speculate.ts).
 */
export function membersSnapshotSql(d: Dialect, schema: string, t: PlanTables): string[] {
  return snapshotFromSql(d, schema, t, allMembersSql(workTable(d, schema, t.members)));
}

function allMembersSql(members: string): string {
  return `select m.identity, m.email, m.user_id from ${members} m`;
}

/** Writes the snapshot of `select` (identity, email, user_id rows) in the dialect's form. */
function snapshotFromSql(d: Dialect, schema: string, t: PlanTables, select: string): string[] {
  const snap = d.table(schema, t.snap);
  if (snapshotFormFor(d) === "by_user") {
    return [
      d.dropTable(snap),
      createTable(d, snap, [
        ["email", storedKeyType(d)],
        ["user_id", storedKeyType(d)],
        ["by_user", "boolean"],
      ]),
      `insert into ${snap} (email, user_id, by_user) select x.email, x.user_id, x.identity like 'u:%' from (${select}) x`,
      ...analyzeSql(d, snap),
    ];
  }
  return [
    d.dropTable(snap),
    createTable(d, snap, [
      ["identity", storedKeyType(d)],
      ["email", storedKeyType(d)],
      ["user_id", storedKeyType(d)],
    ]),
    `insert into ${snap} (identity, email, user_id) ${select}`,
    ...identityIndex(d, schema, t.snap),
    ...analyzeSql(d, snap),
  ];
}
