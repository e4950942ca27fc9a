/**
 * Records whose request JSON the warehouse builds (pure SQL text, no I/O).
 *
 * Most records of a run have plain identifiers: an ASCII email that Iterable's validator
 * certainly accepts, a userId of printable ASCII within the length limit. For those, validating
 * in TypeScript, reading each value out of the warehouse and serialising it again is most of the
 * cost of delivery. The warehouse can prove them valid (`surelyValid`) and write their JSON
 * itself, `batchRows` subscribers to a row, so that delivery reads one string per request: for
 * subscribes and unsubscribes alike (their subscribers are the same JSON objects).
 * The planner decides it once per record (`buildableSql`, the plan's `built` column), so that
 * the bodies, the logs and the outcomes of built batches filter on a flag, not a regex.
 * Every other record (anything `surelyValid` cannot prove, e.g. a non-ASCII email, a rare TLD
 * case, a warning to report, a userId with a quote) goes the record-by-record way, validated in
 * TypeScript as before.
 *
 * `surelyValid` may say no to a valid row (it then takes the slow way) but must never say yes to
 * one that src/identity refuses: a property test checks it against isValidEmail on every
 * dialect that has this path.
 *
 * Batches are ranges of the plan table's `rowid` (DuckDB): `rowid // batchRows`. The plan table
 * is not changed during delivery, so a batch is found again by its number, to classify a failed
 * answer record by record and to write the outcomes of batches Iterable took, in one statement.
 */
import { createRequire } from "node:module";
import { domainToASCII } from "node:url";
import type { Operation } from "../iterable/types.js";
import type { ProjectType } from "../iterable/wire.js";
import type { Dialect } from "../sources/source.js";
import {
  MAX_USER_ID_CHARS,
  OUTCOME_COLUMNS,
  type PlanTables,
  validUserIdSql,
  workTable,
} from "./sql.js";

/** The local part and domain limits of src/identity/email.ts. */
const MAX_LOCAL = 64;
const MAX_DOMAIN = 253;

/** Whether the dialect builds request bodies (DuckDB: batches by rowid). */
export function buildsBodies(d: Dialect): boolean {
  return d.name === "duckdb";
}

/** Top-level domains in ASCII form (punycode for internationalised ones), from the list
 *  src/identity/email.ts checks against. */
function asciiTlds(): string[] {
  const all: string[] = createRequire(import.meta.url)("tlds");
  const ascii = all.map((t) => domainToASCII(t.toLowerCase()));
  return [...new Set(ascii)].filter((t) => /^[a-z][a-z0-9-]*$/.test(t));
}

/** Characters of an unquoted local part that Iterable's validator accepts, minus the dot, and
 *  that JSON writes as themselves: no quote, no backslash, no control character. */
const ATOM = "[a-z0-9!#$%&'*+/=?^_`{|}~-]";
const LABEL = "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?";

let emailPattern: string | undefined;

/** A lowercase dot-atom address on a known TLD: a subset of what isValidEmail accepts. */
export function plainEmailPattern(): string {
  emailPattern ??= `${ATOM}+(\\.${ATOM}+)*@(${LABEL}\\.)+(${asciiTlds().join("|")})`;
  return emailPattern;
}

/** Boolean, never NULL: the email is certainly valid (see plainEmailPattern). */
export function plainEmailSql(d: Dialect, e: string): string {
  return (
    `coalesce(regexp_full_match(${e}, ${d.literal(plainEmailPattern())}) ` +
    `and strpos(${e}, '@') <= ${MAX_LOCAL + 1} and length(${e}) - strpos(${e}, '@') <= ${MAX_DOMAIN}, false)`
  );
}

/** Boolean, never NULL: the member's identifiers need no check in TypeScript and make no warning. */
export function surelyValidSql(d: Dialect, projectType: ProjectType, e: string, u: string): string {
  const user = `coalesce(${validUserIdSql(d, u)}, false)`;
  switch (projectType) {
    case "email":
      return plainEmailSql(d, e);
    case "userId":
      return user;
    case "hybrid":
      return `((${e} is null or ${plainEmailSql(d, e)}) and (${u} is null or ${user}) and (${e} is not null or ${u} is not null))`;
  }
}

/** The most bytes one subscriber of a built body takes: `{"email":"…","userId":"…"}` with a
 *  318-character email and a 52-character userId (ASCII, nothing escaped). */
export const MAX_SUBSCRIBER_BYTES = 12 + MAX_LOCAL + 1 + MAX_DOMAIN + 12 + MAX_USER_ID_CHARS + 2;

/** Boolean, never NULL: the member is sent in a built body. It is surely valid, and its userId
 *  (printable ASCII once valid) holds no `"` or `\`, so that the JSON needs no escape at all. */
export function buildableSql(d: Dialect, projectType: ProjectType, e: string, u: string): string {
  const valid = surelyValidSql(d, projectType, e, u);
  if (projectType === "email") return valid;
  return `(${valid} and coalesce(not contains(${u}, '"') and not contains(${u}, '\\'), true))`;
}

/** One buildable subscriber's JSON (see buildableSql): only the identifiers the project sends,
 *  exactly as subscriberJson serialises them. */
export function subscriberJsonSql(projectType: ProjectType, e: string, u: string): string {
  const email = `concat('{"email":"', ${e}, '"}')`;
  const user = `concat('{"userId":"', ${u}, '"}')`;
  switch (projectType) {
    case "email":
      return email;
    case "userId":
      return user;
    case "hybrid":
      return (
        `case when ${u} is null then ${email} when ${e} is null then ${user} ` +
        `else concat('{"email":"', ${e}, '","userId":"', ${u}, '"}') end`
      );
  }
}

export interface BodySpec {
  /** the plan's records these bodies carry: its built subscribes, or its built unsubscribes */
  op: Operation;
  projectType: ProjectType;
  /** subscribers per batch (IterableClient.bodyBatchRows) */
  batchRows: number;
}

/** The plan's records of `op` sent in built bodies: the plan marks them (`built`, see
 *  buildableSql). */
function builtRows(op: Operation): string {
  return `op = '${op === "subscribe" ? "subscribe" : "unsubscribe"}' and send = 1 and built = 1`;
}

/** The highest rowid of the plan table (NULL when empty): where the batches end. */
export function lastRowSql(d: Dialect, schema: string, t: PlanTables): string {
  return `select max(rowid) as last_row from ${workTable(d, schema, t.plan)}`;
}

/** The rowids of the batches `first`..`last` of `n` rows each, as literal bounds (DuckDB pushes a
 *  filter on rowid down to the scan, so only those rows are read; it does not with parameters). */
function rowRange(n: number, first: number, last: number): string {
  return `rowid between ${Math.trunc(first) * n} and ${(Math.trunc(last) + 1) * n - 1}`;
}

/** `select <columns>` over the built records of the batches `first`..`last`. */
function selectBuilt(
  d: Dialect,
  schema: string,
  t: PlanTables,
  spec: BodySpec,
  columns: (n: number) => string,
  first: number,
  last: number,
): string {
  const n = Math.max(1, Math.floor(spec.batchRows));
  return (
    `select ${columns(n)} from ${workTable(d, schema, t.plan)} ` +
    `where ${rowRange(n, first, last)} and ${builtRows(spec.op)}`
  );
}

/**
 * Built records of the batches `first`..`last`: batch number, subscriber count, and the
 * request body as UTF-8 bytes (a blob): the subscribers' JSON between `parts.head` and
 * `parts.tail` (the client's subscribeBodyParts or unsubscribeBodyParts). Asked for a few
 * batches at a time, so that sending starts at once.
 */
export function bodiesSql(
  d: Dialect,
  schema: string,
  t: PlanTables,
  spec: BodySpec,
  parts: { head: string; tail: string },
  first: number,
  last: number,
): string {
  const json = subscriberJsonSql(spec.projectType, "email", "user_id");
  // encode(): the UTF-8 bytes, read as a blob, so that the body reaches the request without
  // being decoded into a string and encoded again; whole, so that it is sent without a copy
  const body = `concat(${d.literal(parts.head)}, string_agg(${json}, ','), ${d.literal(parts.tail)})`;
  const columns = (n: number) => `rowid // ${n} as batch, count(*) as n, encode(${body}) as body`;
  return `${selectBuilt(d, schema, t, spec, columns, first, last)} group by batch order by batch`;
}

/** The records of one built batch, to classify a failed answer. */
export function bodyRecordsSql(
  d: Dialect,
  schema: string,
  t: PlanTables,
  spec: BodySpec,
  batch: number,
): string {
  return selectBuilt(d, schema, t, spec, () => "identity, email, user_id", batch, batch);
}

/**
 * The built records of the batches `first`..`last` as outcome rows (the columns of the
 * outcomes table, confirmed successes), as a parenthesised select: for the outcomes table and
 * the sync logs of batches Iterable took whole.
 */
export function builtOutcomesSql(
  d: Dialect,
  schema: string,
  t: PlanTables,
  spec: BodySpec,
  first: number,
  last: number,
): string {
  const columns = () =>
    `identity, ${d.literal(spec.op)} as op, email, user_id, 'succeeded' as status, 1 as confirmed, ` +
    "null as error_code, null as error_message";
  return `(${selectBuilt(d, schema, t, spec, columns, first, last)})`;
}

/** Inserts the outcome rows of the built batches `first`..`last` (builtOutcomesSql) into the
 *  run's outcomes table. */
export function insertBuiltOutcomesSql(
  d: Dialect,
  schema: string,
  t: PlanTables,
  spec: BodySpec,
  first: number,
  last: number,
): string {
  const cols = OUTCOME_COLUMNS.join(", ");
  return (
    `insert into ${workTable(d, schema, t.outcomes)} (${cols}) ` +
    `select ${cols} from ${builtOutcomesSql(d, schema, t, spec, first, last)} o`
  );
}

/** Sorted batch numbers as runs of consecutive numbers: [first, last] pairs. */
export function batchRuns(batches: readonly number[]): [number, number][] {
  const sorted = [...batches].sort((a, b) => a - b);
  const runs: [number, number][] = [];
  for (const b of sorted) {
    const run = runs[runs.length - 1];
    if (run && b === run[1] + 1) run[1] = b;
    else if (!run || b > run[1]) runs.push([b, b]);
  }
  return runs;
}
