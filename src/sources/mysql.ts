/**
 * The MySQL / MariaDB source. MySQL has no schemas apart from databases, so `stateSchema` names a
 * database. Connections speak utf8mb4. Parameters are written into the SQL text by a
 * quote-aware formatter (see formatMySql) rather than by the driver, whose formatter replaces `?`
 * inside string literals and escapes with backslashes even under NO_BACKSLASH_ESCAPES.
 */
import { createHash } from "node:crypto";
import type { Connection as CoreConnection, FieldPacket } from "mysql2";
import mysql from "mysql2/promise";
import { redact, SourceError } from "../errors.js";
import { mysqlDialect, mysqlString } from "./dialects.js";
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
  isoFromLocalTimestamp,
  numberFromText,
  urlPassword,
} from "./values.js";

export interface MySqlOptions {
  url?: string;
  host?: string;
  port?: number;
  user?: string;
  password?: string;
  database?: string;
  ssl?: boolean;
  stateSchema: string;
}

/** A value as a MySQL literal. */
export function mysqlValue(value: unknown, backslashEscapes: boolean): string {
  if (value === null || value === undefined) return "NULL";
  switch (typeof value) {
    case "number":
      if (!Number.isFinite(value)) throw new SourceError(`cannot bind ${value} as a parameter`);
      return String(value);
    case "bigint":
      return value.toString();
    case "boolean":
      return value ? "TRUE" : "FALSE";
    case "string":
      return mysqlString(value, backslashEscapes);
    default:
      if (value instanceof Date) {
        return mysqlString(value.toISOString().replace("T", " ").replace("Z", ""), false);
      }
      if (value instanceof Uint8Array) return `X'${Buffer.from(value).toString("hex")}'`;
      return mysqlString(JSON.stringify(value), backslashEscapes);
  }
}

/**
 * Replaces each `?` placeholder outside string literals, quoted identifiers and comments with
 * the next parameter as a literal.
 */
export function formatMySql(sql: string, params: unknown[], backslashEscapes: boolean): string {
  if (params.length === 0) return sql;
  let out = "";
  let next = 0;
  let i = 0;
  let start = 0;
  const n = sql.length;
  while (i < n) {
    const ch = sql[i];
    if (ch === "'" || ch === '"' || ch === "`") {
      i++;
      while (i < n) {
        const c = sql[i];
        if (c === "\\" && backslashEscapes && ch !== "`") {
          i += 2;
          continue;
        }
        if (c === ch) {
          if (sql[i + 1] === ch) {
            i += 2;
            continue;
          }
          break;
        }
        i++;
      }
      i++;
    } else if (
      ch === "#" ||
      (ch === "-" && sql[i + 1] === "-" && /[\s]/.test(sql[i + 2] ?? "\n"))
    ) {
      while (i < n && sql[i] !== "\n") i++;
    } else if (ch === "/" && sql[i + 1] === "*") {
      const end = sql.indexOf("*/", i + 2);
      i = end < 0 ? n : end + 2;
    } else if (ch === "?") {
      if (next >= params.length) {
        throw new SourceError(`the SQL has more placeholders than the ${params.length} parameters`);
      }
      out += sql.slice(start, i) + mysqlValue(params[next++], backslashEscapes);
      i++;
      start = i;
    } else {
      i++;
    }
  }
  if (next !== params.length) {
    throw new SourceError(`the SQL has ${next} placeholders for ${params.length} parameters`);
  }
  return out + sql.slice(start);
}

const CONNECT_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "ETIMEDOUT",
  "ECONNRESET",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "PROTOCOL_CONNECTION_LOST",
  "ER_ACCESS_DENIED_ERROR",
  "ER_DBACCESS_DENIED_ERROR",
  "ER_BAD_DB_ERROR",
  "ER_HOST_NOT_PRIVILEGED",
]);
const NOT_RETRYABLE_CONNECT = new Set([
  "ER_ACCESS_DENIED_ERROR",
  "ER_DBACCESS_DENIED_ERROR",
  "ER_BAD_DB_ERROR",
  "ER_HOST_NOT_PRIVILEGED",
]);

// mysql2 type ids -> SQL type names, for describe().
const TYPE_NAMES: Record<number, string> = {
  0: "DECIMAL",
  1: "TINYINT",
  2: "SMALLINT",
  3: "INT",
  4: "FLOAT",
  5: "DOUBLE",
  6: "NULL",
  7: "TIMESTAMP",
  8: "BIGINT",
  9: "MEDIUMINT",
  10: "DATE",
  11: "TIME",
  12: "DATETIME",
  13: "YEAR",
  14: "DATE",
  15: "VARCHAR",
  16: "BIT",
  245: "JSON",
  246: "DECIMAL",
  247: "ENUM",
  248: "SET",
  249: "TINYBLOB",
  250: "MEDIUMBLOB",
  251: "LONGBLOB",
  252: "BLOB",
  253: "VARCHAR",
  254: "CHAR",
  255: "GEOMETRY",
};
const BINARY_CHARSET = 63;

function typeName(field: FieldPacket): string {
  const name = TYPE_NAMES[field.columnType ?? -1] ?? `TYPE ${field.columnType}`;
  // Text and binary strings share type ids; the charset tells them apart.
  if (field.characterSet !== BINARY_CHARSET) {
    if (name.endsWith("BLOB")) return name.replace("BLOB", "TEXT");
  } else if (name === "VARCHAR") return "VARBINARY";
  else if (name === "CHAR") return "BINARY";
  return name;
}

type Formatter = (sql: string, params?: unknown[]) => string;

class MySqlExecutor implements SqlExecutor {
  constructor(
    readonly dialect: Dialect,
    protected readonly run: (sql: string) => Promise<unknown>,
    protected readonly format: Formatter,
    protected readonly fail: (error: unknown, what?: string) => SourceError,
  ) {}

  async exec(sql: string, params?: unknown[]): Promise<void> {
    try {
      await this.run(this.format(sql, params));
    } catch (error) {
      throw this.fail(error);
    }
  }

  async query<T extends Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]> {
    try {
      const [rows] = (await this.run(this.format(sql, params))) as [unknown];
      // A statement that returns no rows answers with a result header, not an array.
      return Array.isArray(rows) ? (rows as T[]) : [];
    } catch (error) {
      throw this.fail(error);
    }
  }
}

class MySqlSource extends MySqlExecutor implements Source {
  private readonly lockConnections = new Set<mysql.Connection>();

  constructor(
    dialect: Dialect,
    private readonly pool: mysql.Pool,
    private readonly connectionOptions: mysql.ConnectionOptions,
    format: Formatter,
    fail: (error: unknown, what?: string) => SourceError,
    private readonly maxStatementChars: number,
    private readonly backslashEscapes: boolean,
    readonly stateSchema: string,
  ) {
    super(dialect, (sql) => pool.query(sql), format, fail);
  }

  private async connection(): Promise<mysql.PoolConnection> {
    try {
      return await this.pool.getConnection();
    } catch (error) {
      throw this.fail(error);
    }
  }

  async *stream<T extends Record<string, unknown>>(
    sql: string,
    params?: unknown[],
    batchSize = DEFAULT_BATCH_SIZE,
  ): AsyncIterable<T[]> {
    const text = this.format(sql, params);
    const conn = await this.connection();
    let finished = false;
    try {
      // The promise wrapper's `connection` is the callback-style connection, whose queries can
      // be read as a stream; the stream pauses the socket while the consumer is busy.
      const core = conn.connection as unknown as CoreConnection;
      const rows = core.query(text).stream({ highWaterMark: Math.min(batchSize, 1000) });
      let batch: T[] = [];
      try {
        for await (const row of rows) {
          batch.push(row as T);
          if (batch.length >= batchSize) {
            yield batch;
            batch = [];
          }
        }
      } catch (error) {
        throw this.fail(error);
      }
      if (batch.length > 0) yield batch;
      finished = true;
    } finally {
      // A connection left in the middle of a result cannot take another query: drop it.
      if (finished) conn.release();
      else conn.destroy();
    }
  }

  async describe(modelSql: string): Promise<{ name: string; type: string }[]> {
    try {
      // The newline keeps a trailing `-- comment` in the model from swallowing the parenthesis.
      const [, fields] = await this.pool.query(`select * from (\n${modelSql}\n) as m limit 0`);
      return (fields ?? []).map((f) => ({ name: f.name, type: typeName(f) }));
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
    const head = `INSERT INTO ${target} (${columns.map((c) => d.quoteIdent(c)).join(", ")}) VALUES `;
    const bs = this.backslashEscapes;
    const conn = await this.connection();
    let count = 0;
    let ok = false;
    try {
      await conn.query("START TRANSACTION");
      let parts: string[] = [];
      let bytes = 0;
      const flush = async () => {
        if (parts.length === 0) return;
        await conn.query(head + parts.join(","));
        count += parts.length;
        parts = [];
        bytes = 0;
      };
      for await (const batch of rows) {
        checkBatchShape(batch, columns.length);
        for (const row of batch) {
          const tuple = `(${row.map((v) => mysqlValue(v, bs)).join(",")})`;
          // Statements stay well under max_allowed_packet, which the server enforces.
          if (bytes + tuple.length > this.maxStatementChars) await flush();
          parts.push(tuple);
          bytes += tuple.length;
        }
      }
      await flush();
      await conn.query("COMMIT");
      ok = true;
      return count;
    } catch (error) {
      await conn.query("ROLLBACK").catch(() => undefined);
      throw this.fail(error, `insert into ${target} failed`);
    } finally {
      if (ok) conn.release();
      else conn.destroy();
    }
  }

  async ensureSchema(schema: string): Promise<void> {
    // Looked up first: CREATE DATABASE IF NOT EXISTS needs the global CREATE privilege even when
    // the database exists, and the user may have rights on the state database only.
    const rows = await this.query(
      "select 1 from information_schema.schemata where schema_name = ?",
      [schema],
    );
    if (rows.length === 0) {
      await this.exec(
        `CREATE DATABASE IF NOT EXISTS ${this.dialect.quoteIdent(schema)} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
      );
    }
  }

  async tableExists(schema: string, table: string): Promise<boolean> {
    const rows = await this.query(
      `select 1 from information_schema.tables
        where table_schema = ? and binary table_name = binary ? and table_type = 'BASE TABLE'`,
      [schema, table],
    );
    return rows.length > 0;
  }

  async listTables(schema: string, prefix = ""): Promise<string[]> {
    const rows = await this.query<{ name: string }>(
      `select table_name as name from information_schema.tables
        where table_schema = ? and table_type = 'BASE TABLE'
          and binary left(table_name, char_length(?)) = binary ?
        order by binary table_name`,
      [schema, prefix, prefix],
    );
    return rows.map((r) => String(r.name));
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    const conn = await this.connection();
    const tx = new MySqlExecutor(this.dialect, (sql) => conn.query(sql), this.format, this.fail);
    let ok = false;
    try {
      await tx.exec("START TRANSACTION");
      const result = await fn(tx);
      await tx.exec("COMMIT");
      ok = true;
      return result;
    } catch (error) {
      await conn.query("ROLLBACK").then(
        () => {
          ok = true;
        },
        () => undefined,
      );
      throw error;
    } finally {
      if (ok) conn.release();
      else conn.destroy();
    }
  }

  async tryLock(name: string): Promise<Lock | null> {
    // GET_LOCK names are server-wide and at most 64 characters.
    let key = `audience-sync:${this.stateSchema}:${name}`;
    if (key.length > 64) {
      key = `audience-sync:${createHash("sha256").update(key).digest("hex").slice(0, 48)}`;
    }
    let conn: mysql.Connection | undefined;
    try {
      conn = await mysql.createConnection(this.connectionOptions);
      conn.on("error", () => undefined);
      const [rows] = await conn.query(this.format("select GET_LOCK(?, 0) as ok", [key]));
      const ok = (rows as { ok: number | null }[])[0]?.ok === 1;
      if (!ok) {
        await conn.end();
        return null;
      }
      const held = conn;
      this.lockConnections.add(held);
      let live = true;
      return {
        release: async () => {
          if (!live) return;
          live = false;
          this.lockConnections.delete(held);
          await held.query(this.format("select RELEASE_LOCK(?)", [key])).catch(() => undefined);
          await held.end().catch(() => undefined);
        },
      };
    } catch (error) {
      await conn?.end().catch(() => undefined);
      throw this.fail(error);
    }
  }

  async close(): Promise<void> {
    for (const conn of this.lockConnections) await conn.end().catch(() => undefined);
    this.lockConnections.clear();
    await this.pool.end();
  }
}

export async function openMySql(config: MySqlOptions, opts: OpenOptions = {}): Promise<Source> {
  const secrets = [config.password, urlPassword(config.url), config.url];
  const where = endpoint(config, 3306);
  const settings = opts.name ? `sources.${opts.name}` : "the source";
  let label = "MySQL/MariaDB";
  const fail = (error: unknown, what = "query failed"): SourceError => {
    if (error instanceof SourceError) return error;
    const code = (error as { code?: string }).code ?? "";
    if (CONNECT_CODES.has(code) || (code === "" && /connect|timeout/i.test(errorMessage(error)))) {
      return new SourceError(
        redact(
          `could not connect to ${label} at ${where}: ${errorMessage(error)}; check ${settings}.url (or host, port, user, password, database)`,
          ...secrets,
        ),
        { cause: error, retryable: !NOT_RETRYABLE_CONNECT.has(code) },
      );
    }
    return new SourceError(
      redact(`${label} ${what}: ${errorMessage(error)}${code ? ` (${code})` : ""}`, ...secrets),
      { cause: error, retryable: code === "ER_LOCK_DEADLOCK" || code === "ER_LOCK_WAIT_TIMEOUT" },
    );
  };
  const connectionOptions: mysql.ConnectionOptions = {
    ...(config.url ? { uri: config.url } : {}),
    host: config.url ? undefined : config.host,
    port: config.url ? undefined : config.port,
    user: config.url ? undefined : config.user,
    password: config.url ? undefined : config.password,
    database: config.url ? undefined : config.database,
    ssl: config.ssl ? {} : undefined,
    charset: "utf8mb4",
    connectTimeout: 10_000,
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
    typeCast(field, next) {
      switch (field.type) {
        case "LONGLONG":
        case "NEWDECIMAL":
        case "DECIMAL": {
          const text = field.string();
          return text === null ? null : numberFromText(text);
        }
        case "DATETIME":
        case "TIMESTAMP": {
          const text = field.string();
          return text === null ? null : isoFromLocalTimestamp(text);
        }
        default:
          return next();
      }
    },
  };
  const pool = mysql.createPool({
    ...connectionOptions,
    connectionLimit: 4,
    maxIdle: 4,
    idleTimeout: 10_000,
  });
  pool.on("connection", (conn) => {
    // Idle pooled connections that die emit 'error'; without a listener that ends the process.
    (conn as unknown as { on(event: string, fn: () => void): void }).on("error", () => undefined);
  });
  let info: { mode: string; version: string; packet: number | string };
  try {
    const [rows] = await pool.query(
      "select @@sql_mode as mode, @@version as version, @@max_allowed_packet as packet",
    );
    info = (rows as (typeof info)[])[0] ?? { mode: "", version: "", packet: 4 << 20 };
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw fail(error);
  }
  const mariadb = /mariadb/i.test(info.version);
  label = mariadb ? "MariaDB" : "MySQL";
  const major = Number.parseInt(info.version, 10);
  const backslashEscapes = !/NO_BACKSLASH_ESCAPES/i.test(info.mode);
  const dialect = mysqlDialect({
    backslashEscapes,
    // The collation whose LOWER() follows the newest Unicode case mapping the server has.
    lowerCollation: !mariadb && major >= 8 ? "utf8mb4_0900_ai_ci" : "utf8mb4_unicode_520_ci",
  });
  const format: Formatter = (sql, params) => formatMySql(sql, params ?? [], backslashEscapes);
  // Counted in UTF-16 units: up to 4 bytes each on the wire, so 1/8 of the packet limit is safe.
  const maxStatementChars = Math.max(
    16 << 10,
    Math.min(4 << 20, Math.floor(Number(info.packet) / 8)),
  );
  return new MySqlSource(
    dialect,
    pool,
    connectionOptions,
    format,
    fail,
    maxStatementChars,
    backslashEscapes,
    config.stateSchema,
  );
}
