/**
 * The PostgreSQL source: a small pool for statements, a server-side cursor per stream, and a
 * dedicated connection per advisory lock (the lock lives as long as its session).
 */
import { createHash } from "node:crypto";
import pg from "pg";
import { redact, SourceError } from "../errors.js";
import { postgresDialect } from "./dialects.js";
import type { OpenOptions } from "./duckdb.js";
import {
  DEFAULT_BATCH_SIZE,
  type Dialect,
  type Lock,
  type Source,
  type SqlExecutor,
} from "./source.js";
import {
  checkBatchShape,
  endpoint,
  errorMessage,
  isoFromDate,
  isoFromLocalTimestamp,
  numberFromText,
  urlPassword,
} from "./values.js";

export interface PostgresOptions {
  url?: string;
  host?: string;
  port?: number;
  user?: string;
  password?: string;
  database?: string;
  ssl?: boolean;
  stateSchema: string;
}

const OID = { int8: 20, numeric: 1700, date: 1082, timestamp: 1114, timestamptz: 1184 } as const;

// Per-pool type parsers, so that the process-wide pg.types defaults stay untouched.
const typeParsers = {
  getTypeParser(oid: number, format?: "text" | "binary") {
    switch (oid) {
      case OID.int8:
      case OID.numeric:
        return numberFromText;
      case OID.date:
        return (text: string) => text;
      case OID.timestamp:
        return isoFromLocalTimestamp;
      case OID.timestamptz: {
        const parse = pg.types.getTypeParser(oid, "text") as (text: string) => Date | string;
        return (text: string) => {
          const value = parse(text);
          return value instanceof Date ? isoFromDate(value) : value;
        };
      }
      default:
        // biome-ignore lint/suspicious/noExplicitAny: pg's overloads cannot take a union format
        return pg.types.getTypeParser(oid, format as any);
    }
  },
};

// Error codes of failures to reach or log in to the server (not of the SQL itself).
const CONNECT_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "ETIMEDOUT",
  "ECONNRESET",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
]);
const CONNECT_SQLSTATE = /^(08|28|3D)/;

function isConnectError(code: string, message: string): boolean {
  if (CONNECT_CODES.has(code) || CONNECT_SQLSTATE.test(code)) return true;
  // Driver-side failures (timeouts, closed sockets) carry no SQLSTATE.
  return code === "" && /connect|terminated|timeout/i.test(message);
}

interface PgError {
  code?: string;
  detail?: string;
  hint?: string;
}

/** A placeholder list `($1, $2), ($3, $4)` for rows x cols parameters. */
function valuesList(rows: number, cols: number): string {
  const out: string[] = new Array(rows);
  let p = 1;
  for (let r = 0; r < rows; r++) {
    const ph: string[] = new Array(cols);
    for (let c = 0; c < cols; c++) ph[c] = `$${p++}`;
    out[r] = `(${ph.join(", ")})`;
  }
  return out.join(", ");
}

export function advisoryKey(stateSchema: string, name: string): string {
  return createHash("sha256")
    .update(`audience-sync\u0000${stateSchema}\u0000${name}`)
    .digest()
    .readBigInt64BE(0)
    .toString();
}

class PgExecutor implements SqlExecutor {
  constructor(
    readonly dialect: Dialect,
    protected readonly run: (sql: string, params?: unknown[]) => Promise<pg.QueryResult>,
    protected readonly fail: (error: unknown, what?: string) => SourceError,
  ) {}

  async exec(sql: string, params?: unknown[]): Promise<void> {
    try {
      await this.run(sql, params);
    } catch (error) {
      throw this.fail(error);
    }
  }

  async query<T extends Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]> {
    try {
      return (await this.run(sql, params)).rows as T[];
    } catch (error) {
      throw this.fail(error);
    }
  }
}

class PostgresSource extends PgExecutor implements Source {
  private readonly lockClients = new Set<pg.Client>();
  private cursorSeq = 0;

  constructor(
    dialect: Dialect,
    private readonly pool: pg.Pool,
    private readonly clientConfig: pg.ClientConfig,
    fail: (error: unknown, what?: string) => SourceError,
    readonly stateSchema: string,
  ) {
    super(dialect, (sql, params) => pool.query(sql, params), fail);
  }

  private async client(): Promise<pg.PoolClient> {
    try {
      return await this.pool.connect();
    } catch (error) {
      throw this.fail(error);
    }
  }

  async *stream<T extends Record<string, unknown>>(
    sql: string,
    params?: unknown[],
    batchSize = DEFAULT_BATCH_SIZE,
  ): AsyncIterable<T[]> {
    const client = await this.client();
    const cursor = `audience_sync_cursor_${++this.cursorSeq}`;
    let done = false;
    let broken: unknown;
    try {
      await client.query("BEGIN");
      // A cursor is the only way pg (without pg-cursor) reads a result in parts: the server keeps
      // the result and hands out batchSize rows per FETCH.
      await client.query(`DECLARE ${cursor} NO SCROLL CURSOR FOR ${sql}`, params);
      for (;;) {
        const result = await client.query(`FETCH FORWARD ${batchSize} FROM ${cursor}`);
        if (result.rows.length > 0) yield result.rows as T[];
        if (result.rows.length < batchSize) break;
      }
      await client.query("COMMIT");
      done = true;
    } catch (error) {
      broken = error;
      throw this.fail(error);
    } finally {
      if (!done) {
        // Stopped early (consumer break) or failed: end the transaction, which closes the cursor.
        await client.query("ROLLBACK").catch((error: unknown) => {
          broken ??= error;
        });
      }
      client.release(broken instanceof Error ? broken : undefined);
    }
  }

  async describe(modelSql: string): Promise<{ name: string; type: string }[]> {
    try {
      // The newline keeps a trailing `-- comment` in the model from swallowing the parenthesis.
      const result = await this.pool.query(`select * from (\n${modelSql}\n) as m limit 0`);
      if (result.fields.length === 0) return [];
      const types = await this.pool.query<{ t: string }>(
        "select format_type(o, m) as t from unnest($1::oid[], $2::int[]) with ordinality as x(o, m, i) order by i",
        [result.fields.map((f) => f.dataTypeID), result.fields.map((f) => f.dataTypeModifier)],
      );
      return result.fields.map((f, i) => ({ name: f.name, type: types.rows[i]?.t ?? "unknown" }));
    } catch (error) {
      throw this.fail(error, "could not read the model");
    }
  }

  async insertRows(
    schema: string,
    table: string,
    columns: string[],
    rows: AsyncIterable<unknown[][]> | Iterable<unknown[][]>,
  ): Promise<number> {
    const d = this.dialect;
    const target = d.table(schema, table);
    const client = await this.client();
    let count = 0;
    let broken: unknown;
    try {
      await client.query("BEGIN");
      const typeRows = await client.query<{ name: string; type: string; is_array: boolean }>(
        `select a.attname as name, format_type(a.atttypid, a.atttypmod) as type, t.typcategory = 'A' as is_array
           from pg_attribute a join pg_type t on t.oid = a.atttypid
          where a.attrelid = $1::regclass and a.attnum > 0 and not a.attisdropped`,
        [target],
      );
      const typeOf = new Map(typeRows.rows.map((r) => [r.name, r]));
      const colTypes = columns.map((c) => typeOf.get(c));
      const missing = columns.find((_, i) => colTypes[i] === undefined);
      if (missing !== undefined) {
        throw new SourceError(`insert into ${target}: no column ${d.quoteIdent(missing)}`);
      }
      const colList = columns.map((c) => d.quoteIdent(c)).join(", ");
      // unnest() of one array per column sends a whole chunk as `columns.length` parameters,
      // which the server parses far faster than one parameter per value. It cannot carry array
      // columns (unnest flattens them); those tables take the multi-row VALUES path.
      const useUnnest = colTypes.every((t) => t && !t.is_array);
      const unnestSql = `INSERT INTO ${target} (${colList}) SELECT * FROM unnest(${colTypes
        .map((t, i) => `$${i + 1}::${t?.type}[]`)
        .join(", ")})`;
      const maxRows = useUnnest ? 20_000 : Math.max(1, Math.floor(60_000 / columns.length));
      const flush = async (chunk: unknown[][]) => {
        if (chunk.length === 0) return;
        if (useUnnest) {
          const arrays = columns.map((_, c) => chunk.map((row) => pgArrayItem(row[c])));
          await client.query(unnestSql, arrays);
        } else {
          await client.query(
            `INSERT INTO ${target} (${colList}) VALUES ${valuesList(chunk.length, columns.length)}`,
            chunk.flat(),
          );
        }
        count += chunk.length;
      };
      let pending: unknown[][] = [];
      for await (const batch of rows) {
        checkBatchShape(batch, columns.length);
        for (const row of batch) {
          pending.push(row);
          if (pending.length >= maxRows) {
            await flush(pending);
            pending = [];
          }
        }
      }
      await flush(pending);
      await client.query("COMMIT");
      return count;
    } catch (error) {
      broken = error;
      await client.query("ROLLBACK").catch(() => undefined);
      throw this.fail(error, `insert into ${target} failed`);
    } finally {
      client.release(
        broken instanceof Error && !(broken instanceof SourceError) ? broken : undefined,
      );
    }
  }

  async ensureSchema(schema: string): Promise<void> {
    // Looked up first: CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the
    // schema exists, and the state schema's owner may have been given only that schema.
    const rows = await this.query("select 1 from pg_namespace where nspname = $1", [schema]);
    if (rows.length === 0)
      await this.exec(`CREATE SCHEMA IF NOT EXISTS ${this.dialect.quoteIdent(schema)}`);
  }

  async tableExists(schema: string, table: string): Promise<boolean> {
    const rows = await this.query(
      `select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = $1 and c.relname = $2 and c.relkind in ('r', 'p')`,
      [schema, table],
    );
    return rows.length > 0;
  }

  async listTables(schema: string, prefix = ""): Promise<string[]> {
    const rows = await this.query<{ name: string }>(
      `select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = $1 and c.relkind in ('r', 'p') and left(c.relname, char_length($2)) = $2
        order by c.relname collate "C"`,
      [schema, prefix],
    );
    return rows.map((r) => r.name);
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    const client = await this.client();
    const tx = new PgExecutor(this.dialect, (sql, params) => client.query(sql, params), this.fail);
    let broken: Error | undefined;
    try {
      await tx.exec("BEGIN");
      const result = await fn(tx);
      await tx.exec("COMMIT");
      return result;
    } catch (error) {
      await client.query("ROLLBACK").catch((e: unknown) => {
        broken = e instanceof Error ? e : undefined;
      });
      throw error;
    } finally {
      client.release(broken);
    }
  }

  async tryLock(name: string): Promise<Lock | null> {
    const client = new pg.Client(this.clientConfig);
    // An idle connection that dies emits 'error'; without a listener that would end the process.
    client.on("error", () => undefined);
    try {
      await client.connect();
      const key = advisoryKey(this.stateSchema, name);
      const result = await client.query<{ ok: boolean }>(
        "select pg_try_advisory_lock($1::bigint) as ok",
        [key],
      );
      if (!result.rows[0]?.ok) {
        await client.end();
        return null;
      }
      this.lockClients.add(client);
      let held = true;
      return {
        release: async () => {
          if (!held) return;
          held = false;
          this.lockClients.delete(client);
          // Ending the session frees its advisory locks; unlocking first is only politeness.
          await client.query("select pg_advisory_unlock($1::bigint)", [key]).catch(() => undefined);
          await client.end().catch(() => undefined);
        },
      };
    } catch (error) {
      await client.end().catch(() => undefined);
      throw this.fail(error);
    }
  }

  async close(): Promise<void> {
    for (const client of this.lockClients) await client.end().catch(() => undefined);
    this.lockClients.clear();
    await this.pool.end();
  }
}

/** One element of a unnest() array parameter; pg writes nested arrays as multi-dimensional ones. */
function pgArrayItem(value: unknown): unknown {
  if (value === undefined) return null;
  if (typeof value === "bigint") return value.toString();
  if (
    value !== null &&
    typeof value === "object" &&
    !(value instanceof Date) &&
    !Buffer.isBuffer(value)
  ) {
    return JSON.stringify(value);
  }
  return value;
}

export async function openPostgres(
  config: PostgresOptions,
  opts: OpenOptions = {},
): Promise<Source> {
  const secrets = [config.password, urlPassword(config.url), config.url];
  const where = endpoint(config, 5432);
  const settings = opts.name ? `sources.${opts.name}` : "the source";
  const fail = (error: unknown, what = "query failed"): SourceError => {
    if (error instanceof SourceError) return error;
    const e = error as PgError;
    const code = e.code ?? "";
    if (isConnectError(code, errorMessage(error))) {
      return new SourceError(
        redact(
          `could not connect to PostgreSQL at ${where}: ${errorMessage(error)}; check ${settings}.url (or host, port, user, password, database)`,
          ...secrets,
        ),
        { cause: error, retryable: !code.startsWith("28") && !code.startsWith("3D") },
      );
    }
    const extra = [e.detail && `detail: ${e.detail}`, e.hint && `hint: ${e.hint}`].filter(Boolean);
    return new SourceError(
      redact(
        `PostgreSQL ${what}: ${errorMessage(error)}${code ? ` (SQLSTATE ${code})` : ""}${extra.length ? `; ${extra.join("; ")}` : ""}`,
        ...secrets,
      ),
      { cause: error, retryable: code === "40001" || code === "40P01" },
    );
  };
  const clientConfig: pg.ClientConfig = {
    connectionString: config.url,
    host: config.host,
    port: config.port,
    user: config.user,
    password: config.password,
    database: config.database,
    ssl: config.ssl,
    application_name: "audience-sync",
    connectionTimeoutMillis: 10_000,
    types: typeParsers,
  };
  const pool = new pg.Pool({ ...clientConfig, max: 4, idleTimeoutMillis: 10_000 });
  pool.on("error", () => undefined);
  let settingsRow: { enc: string; icu: boolean } | undefined;
  try {
    const result = await pool.query<{ enc: string; icu: boolean }>(
      "select current_setting('server_encoding') as enc, exists(select 1 from pg_collation where collname = 'und-x-icu') as icu",
    );
    settingsRow = result.rows[0];
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw fail(error);
  }
  const dialect = postgresDialect({
    utf8: settingsRow?.enc === "UTF8",
    icu: settingsRow?.icu === true,
  });
  return new PostgresSource(dialect, pool, clientConfig, fail, config.stateSchema);
}
