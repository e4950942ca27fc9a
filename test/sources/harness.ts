/** The sources the tests run against: DuckDB always, PostgreSQL and MariaDB where they listen. */
import { randomBytes } from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { openSource, type Source, type SourceConfig } from "../../src/sources/index.js";
import { MYSQL_URL, mysqlAvailable, POSTGRES_URL, postgresAvailable } from "../support/services.js";

export interface Target {
  name: "duckdb" | "postgres" | "mysql";
  available: boolean;
  config(stateSchema: string): Promise<SourceConfig>;
  /** SQL of a model returning `count` rows (i, email), without any table */
  generate(count: number): string;
  drop(source: Source, schema: string): Promise<void>;
}

export const uniqueSchema = (tag = "t") =>
  `as_${tag}_${process.pid}_${randomBytes(3).toString("hex")}`;

const [hasPg, hasMy] = await Promise.all([postgresAvailable(), mysqlAvailable()]);

const digits =
  "(select 0 d union all select 1 union all select 2 union all select 3 union all select 4 union all select 5 union all select 6 union all select 7 union all select 8 union all select 9)";

export const targets: Target[] = [
  {
    name: "duckdb",
    available: true,
    async config(stateSchema) {
      const dir = await mkdtemp(path.join(tmpdir(), "as-duckdb-"));
      return { type: "duckdb", path: path.join(dir, "nested", "warehouse.duckdb"), stateSchema };
    },
    generate: (count) =>
      `select g as i, 'user' || g || '@example.com' as email from range(0, ${count}) t(g)`,
    drop: async () => undefined,
  },
  {
    name: "postgres",
    available: hasPg,
    config: async (stateSchema) => ({ type: "postgres", url: POSTGRES_URL, stateSchema }),
    generate: (count) =>
      `select g as i, 'user' || g || '@example.com' as email from generate_series(0, ${count - 1}) g`,
    drop: (source, schema) =>
      source.exec(`DROP SCHEMA IF EXISTS ${source.dialect.quoteIdent(schema)} CASCADE`),
  },
  {
    name: "mysql",
    available: hasMy,
    config: async (stateSchema) => ({ type: "mysql", url: MYSQL_URL, stateSchema }),
    generate: (count) =>
      `select i, concat('user', i, '@example.com') as email from (select a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 10000 * f.d + 100000 * h.d as i from ${digits} a, ${digits} b, ${digits} c, ${digits} e, ${digits} f, ${digits} h) n where i < ${count}`,
    drop: (source, schema) =>
      source.exec(`DROP DATABASE IF EXISTS ${source.dialect.quoteIdent(schema)}`),
  },
];

export async function openTarget(target: Target, schema: string): Promise<Source> {
  return await openSource(await target.config(schema));
}
