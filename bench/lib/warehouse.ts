/**
 * Benchmark warehouses and their data, generated inside the warehouse with SQL (DuckDB `range()`,
 * PostgreSQL `generate_series`), so that building 10M rows costs seconds and no Node memory.
 *
 * The model is a hybrid audience: `id` (bigint), `email`, `user_id`. Every tenth row has no
 * userId (an email-only member); emails are already normalised so that a plain SQL join sees the
 * same differences as the planner.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { openSource, type SourceConfig } from "../../src/sources/index.js";
import type { Source } from "../../src/sources/source.js";

export type BenchDialect = "duckdb" | "postgres";

export const POSTGRES_URL =
  process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";

export interface BenchWarehouse {
  dialect: BenchDialect;
  dataSchema: string;
  config: SourceConfig;
  open(): Promise<Source>;
  cleanup(): Promise<void>;
}

export async function createBenchWarehouse(dialect: BenchDialect): Promise<BenchWarehouse> {
  const id = randomBytes(4).toString("hex");
  const stateSchema = `bench_state_${id}`;
  if (dialect === "duckdb") {
    const dir = await mkdtemp(path.join(os.tmpdir(), "as-bench-"));
    const config: SourceConfig = {
      type: "duckdb",
      path: path.join(dir, "warehouse.duckdb"),
      stateSchema,
    };
    return {
      dialect,
      dataSchema: "main",
      config,
      open: () => openSource(config),
      cleanup: () => rm(dir, { recursive: true, force: true }),
    };
  }
  const dataSchema = `bench_data_${id}`;
  const config: SourceConfig = { type: "postgres", url: POSTGRES_URL, stateSchema };
  const admin = await openSource(config);
  try {
    await admin.ensureSchema(dataSchema);
  } finally {
    await admin.close();
  }
  return {
    dialect,
    dataSchema,
    config,
    open: () => openSource(config),
    cleanup: async () => {
      const s = await openSource(config);
      try {
        for (const schema of [dataSchema, stateSchema]) {
          await s.exec(`drop schema if exists ${s.dialect.quoteIdent(schema)} cascade`);
        }
      } finally {
        await s.close();
      }
    },
  };
}

/** Row `i` of the model as SQL expressions over an integer column `i`. */
function rowSelect(i: string): string {
  return (
    `${i} as id, ` +
    `'user' || ${i} || '@example.com' as email, ` +
    `case when ${i} % 10 = 9 then null else 'u' || ${i} end as user_id`
  );
}

function series(source: Source, from: number, to: number): string {
  // both ends inclusive
  return source.dialect.name === "duckdb"
    ? `range(${from}, ${to + 1}) r(i)`
    : `generate_series(${from}::bigint, ${to}::bigint) as r(i)`;
}

/** Creates the model table with `rows` rows (ids 0..rows-1). */
export async function generateModel(
  source: Source,
  schema: string,
  table: string,
  rows: number,
): Promise<void> {
  const d = source.dialect;
  const t = d.table(schema, table);
  await source.exec(d.dropTable(t));
  await source.exec(
    `create table ${t} as select ${rowSelect("i")} from ${series(source, 0, rows - 1)}`,
  );
  if (d.name === "postgres") await source.exec(`analyze ${t}`);
}

/**
 * Change number `k` (1, 2, ...) of about 1.1% of the rows, touching other rows each time:
 * 0.5% deleted (id % 200 = k), 0.5% new rows (ids after the original ones), and 0.1% with a new
 * email (id % 1000 = 500 + k; these rows keep their userId, so their member changes in place).
 */
export async function applyChange(
  source: Source,
  schema: string,
  table: string,
  rows: number,
  k: number,
): Promise<{ deleted: number; inserted: number; changed: number }> {
  if (k < 1 || k >= 200) throw new RangeError("change number must be 1..199");
  const t = source.dialect.table(schema, table);
  const count = async (where: string) =>
    Number((await source.query(`select count(*) as n from ${t} where ${where}`))[0]?.n ?? 0);
  const deleted = await count(`id % 200 = ${k}`);
  await source.exec(`delete from ${t} where id % 200 = ${k}`);
  const block = Math.max(1, Math.floor(rows / 200));
  const from = rows + (k - 1) * block;
  await source.exec(
    `insert into ${t} select ${rowSelect("i")} from ${series(source, from, from + block - 1)}`,
  );
  const changedWhere = `id % 1000 = ${500 + k} and id < ${rows}`;
  const changed = await count(changedWhere);
  await source.exec(`update ${t} set email = 'new${k}.' || email where ${changedWhere}`);
  if (source.dialect.name === "postgres") await source.exec(`analyze ${t}`);
  return { deleted, inserted: block, changed };
}

/** A Source whose exec/query calls are timed, for finding the statement that dominates. */
export function profiledSource(source: Source, log: { sql: string; ms: number }[]): Source {
  return new Proxy(source, {
    get(target, prop) {
      if (prop === "exec" || prop === "query") {
        return async (sql: string, params?: unknown[]) => {
          const started = performance.now();
          try {
            return prop === "exec"
              ? await target.exec(sql, params)
              : await target.query(sql, params);
          } finally {
            log.push({ sql, ms: performance.now() - started });
          }
        };
      }
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
