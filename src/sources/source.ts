import { ConfigError } from "../errors.js";

/**
 * The warehouse seen by the rest of audience-sync: one `Source` per configured source, speaking
 * SQL in its `Dialect`. The planner builds SQL text with the dialect and runs it here; the state
 * layer keeps its tables in `stateSchema`.
 */

export type DialectName = "duckdb" | "postgres" | "mysql";

/**
 * SQL text builders for one dialect. Every expression builder takes SQL text and returns SQL text;
 * none of them executes anything. The string functions agree with these JS definitions (see
 * docs/sources.md for the exact limits):
 * - trimLower(s) = s.trim().toLowerCase() (full `String.prototype.trim` whitespace set)
 * - length(s)    = [...s].length (Unicode code points)
 * - isPrintableAscii(s) = /^[\x20-\x7e]*$/.test(s)
 */
export interface Dialect {
  name: DialectName;
  /** `"a""b"` (duckdb, postgres) or `` `a``b` `` (mysql) */
  quoteIdent(name: string): string;
  /** quoted qualified name */
  table(schema: string, name: string): string;
  /** placeholder of the 1-based parameter `index`: `$1` or `?` */
  param(index: number): string;
  /** a safe SQL literal, for the rare place a parameter cannot go (DDL) */
  literal(value: string | number | null): string;
  /** trim the JS whitespace set at both ends, then lowercase */
  trimLower(expr: string): string;
  /** length in Unicode code points */
  length(expr: string): string;
  /** boolean: every character is in 0x20..0x7E; true for the empty string, NULL for NULL */
  isPrintableAscii(expr: string): string;
  /** a stable text hash of the values, distinguishing NULL from '' and ('a','bc') from ('ab','c') */
  hash(exprs: string[]): string;
  /** any column as text (mysql: utf8mb4 with binary collation, so comparisons are exact) */
  castText(expr: string): string;
  createTableAs(target: string, select: string): string;
  /** drop if exists */
  dropTable(target: string): string;
}

export type SqlExecutor = Pick<Source, "exec" | "query" | "dialect">;

export interface Lock {
  release(): Promise<void>;
}

export interface Source {
  readonly dialect: Dialect;
  readonly stateSchema: string;
  /** run a statement, no result */
  exec(sql: string, params?: unknown[]): Promise<void>;
  /** small results only: the whole result is held in memory */
  query<T extends Record<string, unknown> = Record<string, unknown>>(
    sql: string,
    params?: unknown[],
  ): Promise<T[]>;
  /** large results, in batches of about `batchSize` rows (default 10,000); memory stays bounded */
  stream<T extends Record<string, unknown> = Record<string, unknown>>(
    sql: string,
    params?: unknown[],
    batchSize?: number,
  ): AsyncIterable<T[]>;
  /** names and types of the columns a model returns, without reading its rows */
  describe(modelSql: string): Promise<{ name: string; type: string }[]>;
  /** bulk insert into an existing table; all rows or none; returns the number of rows inserted.
   *  `catalog`: DuckDB only, the attached database that holds the table (the work catalog of
   *  run-scoped tables); other sources keep work tables in the schema and ignore it. */
  insertRows(
    schema: string,
    table: string,
    columns: string[],
    rows: AsyncIterable<unknown[][]> | Iterable<unknown[][]>,
    opts?: { catalog?: string },
  ): Promise<number>;
  /** creates the schema (mysql: database) unless it exists */
  ensureSchema(schema: string): Promise<void>;
  /** whether a base table of that name exists */
  tableExists(schema: string, table: string): Promise<boolean>;
  /** base tables of the schema whose name starts with `prefix` (exact, case-sensitive), sorted */
  listTables(schema: string, prefix?: string): Promise<string[]>;
  /** runs fn inside a transaction on one connection; rolls back if fn throws */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /** a named lock held until release(); null when held elsewhere */
  tryLock(name: string): Promise<Lock | null>;
  /**
   * DuckDB: runs on one thread fewer (at least one) and a third of its memory limit until the returned
   * function is called (see src/sources/speculate.ts). Counted per DuckDB instance: the first
   * holder narrows it, the last one to release restores the configured settings. Absent where the
   * warehouse runs elsewhere.
   */
  narrow?(): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

export const DEFAULT_BATCH_SIZE = 10_000;

/** The SQL a sync reads: its `model`, or `select * from` its `table` ("schema.table" or "table"). */
export function modelSql(sync: { model?: string; table?: string }, dialect: Dialect): string {
  if (sync.model !== undefined) {
    // A trailing `;` would end the statement early once the model is wrapped in a subquery.
    return sync.model.replace(/(\s*;)+\s*$/, "").trim();
  }
  if (sync.table !== undefined) {
    const name = sync.table.trim();
    const dot = name.indexOf(".");
    const quoted =
      dot < 0 ? dialect.quoteIdent(name) : dialect.table(name.slice(0, dot), name.slice(dot + 1));
    return `select * from ${quoted}`;
  }
  throw new ConfigError("a sync needs `model` or `table`");
}
