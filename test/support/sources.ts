/**
 * Fresh warehouses for integration tests: a DuckDB file in a temp dir, and (where reachable) a
 * PostgreSQL schema and a MariaDB database of their own, dropped afterwards.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { openDuckDb } from "../../src/sources/duckdb.js";
import type { DialectName, Source } from "../../src/sources/source.js";
import { MYSQL_URL, mysqlAvailable, POSTGRES_URL, postgresAvailable } from "./services.js";

export interface TestWarehouse {
  dialect: DialectName;
  /** schema (MySQL: database) the test's model tables live in */
  dataSchema: string;
  /** a fresh connection to the same warehouse (a new "run") */
  open(): Promise<Source>;
  /** source config for a YAML file */
  config: Record<string, unknown>;
  cleanup(): Promise<void>;
}

export async function availableDialects(): Promise<DialectName[]> {
  const out: DialectName[] = ["duckdb"];
  if (await postgresAvailable()) out.push("postgres");
  if (await mysqlAvailable()) out.push("mysql");
  return out;
}

function suffix(): string {
  return randomBytes(4).toString("hex");
}

export async function createWarehouse(dialect: DialectName): Promise<TestWarehouse> {
  const id = suffix();
  const stateSchema = `as_state_${id}`;
  if (dialect === "duckdb") {
    const dir = await mkdtemp(path.join(os.tmpdir(), "as-duck-"));
    const file = path.join(dir, "warehouse.duckdb");
    const config = { type: "duckdb", path: file, stateSchema };
    return {
      dialect,
      dataSchema: "main",
      config,
      open: () => openDuckDb({ path: file, stateSchema }),
      cleanup: () => rm(dir, { recursive: true, force: true }),
    };
  }
  const { openSource } = await import("../../src/sources/index.js");
  const dataSchema = `as_data_${id}`;
  const url = dialect === "postgres" ? POSTGRES_URL : MYSQL_URL;
  const config = { type: dialect, url, stateSchema };
  // biome-ignore lint/suspicious/noExplicitAny: config objects are validated by openSource
  const open = () => openSource(config as any);
  const admin = await open();
  await admin.ensureSchema(dataSchema);
  await admin.close();
  return {
    dialect,
    dataSchema,
    config,
    open,
    cleanup: async () => {
      const s = await open();
      try {
        const drop =
          dialect === "postgres"
            ? "drop schema if exists %s cascade"
            : "drop database if exists %s";
        for (const schema of [dataSchema, stateSchema]) {
          await s.exec(drop.replace("%s", s.dialect.quoteIdent(schema)));
        }
      } finally {
        await s.close();
      }
    },
  };
}

/** Creates (or replaces) a model table of string columns and fills it. */
export async function writeTable(
  source: Source,
  schema: string,
  table: string,
  columns: string[],
  rows: (string | number | null)[][],
): Promise<void> {
  const d = source.dialect;
  const t = d.table(schema, table);
  await source.exec(d.dropTable(t));
  const type = d.name === "mysql" ? "varchar(2000) character set utf8mb4" : "varchar";
  await source.exec(
    `create table ${t} (${columns.map((c) => `${d.quoteIdent(c)} ${d.name === "postgres" ? "text" : type}`).join(", ")})`,
  );
  if (rows.length > 0) await source.insertRows(schema, table, columns, [rows]);
}

/** Runs a source for the length of `fn` (a "run" of its own, as the CLI opens it). */
export async function withSource<T>(w: TestWarehouse, fn: (s: Source) => Promise<T>): Promise<T> {
  const s = await w.open();
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}
