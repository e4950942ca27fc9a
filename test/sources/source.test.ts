import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SourceError } from "../../src/errors.js";
import { modelSql, openSource, type Source } from "../../src/sources/index.js";
import { openTarget, type Target, targets, uniqueSchema } from "./harness.js";

const TRICKY = "it's a \\ back'slash \"q\" ? $1 `tick` é 😀 \t end";

describe.each(targets)("$name source", (target: Target) => {
  let source: Source;
  let schema: string;
  let t: (name: string) => string;

  beforeAll(async () => {
    if (!target.available) return;
    schema = uniqueSchema(target.name.slice(0, 2));
    source = await openTarget(target, schema);
    await source.ensureSchema(schema);
    t = (name) => source.dialect.table(schema, name);
  });
  afterAll(async () => {
    if (!source) return;
    await target.drop(source, schema);
    await source.close();
  });

  it.skipIf(!target.available)("runs statements with bound parameters", async () => {
    const d = source.dialect;
    await source.exec(`create table ${t("people")} (id integer, email varchar(200), note text)`);
    await source.exec(
      `insert into ${t("people")} values (${d.param(1)}, ${d.param(2)}, ${d.param(3)})`,
      [1, "a@example.com", TRICKY],
    );
    await source.exec(
      `insert into ${t("people")} values (${d.param(1)}, ${d.param(2)}, ${d.param(3)})`,
      [2, null, null],
    );
    const rows = await source.query(
      `select id, email, note, '?' as q from ${t("people")} where id = ${d.param(1)}`,
      [1],
    );
    expect(rows).toEqual([{ id: 1, email: "a@example.com", note: TRICKY, q: "?" }]);
    const nulls = await source.query(
      `select email from ${t("people")} where id = ${d.param(1)}`,
      [2],
    );
    expect(nulls).toEqual([{ email: null }]);
    expect(await source.query(`select ${d.literal(TRICKY)} as s`)).toEqual([{ s: TRICKY }]);
  });

  it.skipIf(!target.available)(
    "returns numbers only when exact, dates and timestamps as ISO text",
    async () => {
      const ts = target.name === "mysql" ? "datetime" : "timestamp";
      const rows = await source.query(
        `select cast(123 as bigint) as a, cast('12345678901234567890' as decimal(20,0)) as b,
              cast('1.50' as decimal(10,2)) as c, cast('2024-01-02' as date) as d,
              cast('2024-01-02 03:04:05' as ${ts}) as e`.replace(
          "as bigint",
          target.name === "mysql" ? "as signed" : "as bigint",
        ),
      );
      expect(rows).toEqual([
        { a: 123, b: "12345678901234567890", c: "1.50", d: "2024-01-02", e: "2024-01-02T03:04:05" },
      ]);
    },
  );

  it.skipIf(!target.available)("streams 100,000 rows in bounded batches", async () => {
    const batchSize = 7_000;
    let count = 0;
    let batches = 0;
    const seen = new Set<number>();
    for await (const batch of source.stream<{ i: number; email: string }>(
      target.generate(100_000),
      [],
      batchSize,
    )) {
      expect(batch.length).toBeGreaterThan(0);
      expect(batch.length).toBeLessThanOrEqual(batchSize);
      batches++;
      count += batch.length;
      for (const row of batch) seen.add(Number(row.i));
    }
    expect(count).toBe(100_000);
    expect(seen.size).toBe(100_000);
    expect(batches).toBe(Math.ceil(100_000 / batchSize));
  });

  it.skipIf(!target.available)("stays usable after a stream is abandoned early", async () => {
    for await (const batch of source.stream(target.generate(50_000), [], 1_000)) {
      expect(batch).toHaveLength(1_000);
      break;
    }
    expect(await source.query("select 1 as one")).toEqual([{ one: 1 }]);
  });

  it.skipIf(!target.available)("streams with parameters", async () => {
    const d = source.dialect;
    const rows: unknown[] = [];
    for await (const batch of source.stream(
      `select email from ${t("people")} where id = ${d.param(1)}`,
      [1],
    )) {
      rows.push(...batch);
    }
    expect(rows).toEqual([{ email: "a@example.com" }]);
  });

  it.skipIf(!target.available)("describes a model's columns without reading it", async () => {
    const cols = await source.describe(
      modelSql(
        { model: `select id, email from ${t("people")} -- trailing comment\n;` },
        source.dialect,
      ),
    );
    expect(cols.map((c) => c.name)).toEqual(["id", "email"]);
    expect(cols[0]?.type).toMatch(/int/i);
    expect(cols[1]?.type).toMatch(/char|text|string/i);
    const table = await source.describe(modelSql({ table: `${schema}.people` }, source.dialect));
    expect(table.map((c) => c.name)).toEqual(["id", "email", "note"]);
  });

  it.skipIf(!target.available)("reports a bad model with the database's message", async () => {
    const err = await source.describe("selec email frm users").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceError);
    expect((err as Error).message).toMatch(/syntax/i);
    const missing = await source
      .query(`select * from ${t("no_such_table")}`)
      .catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(SourceError);
    expect((missing as Error).message).toMatch(/no_such_table/);
  });

  it.skipIf(!target.available)("bulk-inserts 50,000 rows exactly", async () => {
    await source.exec(
      `create table ${t("bulk")} (id bigint not null, email varchar(320), note text)`,
    );
    async function* batches() {
      for (let b = 0; b < 10; b++) {
        const rows: unknown[][] = [];
        for (let i = b * 5_000; i < (b + 1) * 5_000; i++) {
          rows.push([
            i,
            i % 7 === 0 ? null : `user${i}@example.com`,
            i === 4242 ? TRICKY : `n${i}`,
          ]);
        }
        yield rows;
      }
    }
    const n = await source.insertRows(schema, "bulk", ["id", "email", "note"], batches());
    expect(n).toBe(50_000);
    const [stats] = await source.query<{ n: number; e: number }>(
      `select count(*) as n, count(email) as e from ${t("bulk")}`,
    );
    expect(Number(stats?.n)).toBe(50_000);
    expect(Number(stats?.e)).toBe(50_000 - Math.ceil(50_000 / 7));
    const d = source.dialect;
    expect(
      await source.query(`select note from ${t("bulk")} where id = ${d.param(1)}`, [4242]),
    ).toEqual([{ note: TRICKY }]);
  });

  it.skipIf(!target.available)("inserts into a column subset in any order", async () => {
    const n = await source.insertRows(schema, "bulk", ["note", "id"], [[["only-note", 60_001]]]);
    expect(n).toBe(1);
    const d = source.dialect;
    expect(
      await source.query(
        `select id, email, note from ${t("bulk")} where id = ${d.param(1)}`,
        [60_001],
      ),
    ).toEqual([{ id: 60_001, email: null, note: "only-note" }]);
  });

  it.skipIf(!target.available)("inserts all rows or none", async () => {
    const before = await source.query<{ n: number }>(`select count(*) as n from ${t("bulk")}`);
    const err = await source
      .insertRows(
        schema,
        "bulk",
        ["id", "email"],
        [[[70_000, "ok@example.com"]], [[null, "bad@example.com"]]],
      )
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceError);
    const after = await source.query<{ n: number }>(`select count(*) as n from ${t("bulk")}`);
    expect(Number(after[0]?.n)).toBe(Number(before[0]?.n));
  });

  it.skipIf(!target.available)("creates schemas and lists tables by exact prefix", async () => {
    await source.ensureSchema(schema); // idempotent
    for (const name of ["snap_2", "snap_1", "snapx1", "other"]) {
      await source.exec(`create table ${t(name)} (id integer)`);
    }
    expect(await source.listTables(schema, "snap_")).toEqual(["snap_1", "snap_2"]);
    expect(await source.listTables(schema)).toEqual(
      expect.arrayContaining(["snap_1", "snap_2", "snapx1", "other", "bulk"]),
    );
    expect(await source.tableExists(schema, "snap_1")).toBe(true);
    expect(await source.tableExists(schema, "snap_3")).toBe(false);
    await source.exec(source.dialect.dropTable(t("snap_1")));
    await source.exec(source.dialect.dropTable(t("snap_1")));
    expect(await source.tableExists(schema, "snap_1")).toBe(false);
  });

  it.skipIf(!target.available)(
    "builds tables with CREATE TABLE AS and a NULL-safe row hash",
    async () => {
      const d = source.dialect;
      await source.exec(
        d.createTableAs(
          t("hashed"),
          `select id, ${d.hash(["email", "note"])} as h from ${t("people")}`,
        ),
      );
      const rows = await source.query<{ id: number; h: string }>(
        `select id, h from ${t("hashed")} order by id`,
      );
      expect(rows).toHaveLength(2);
      expect(rows[0]?.h).toMatch(/^[0-9a-f]{32}$/);
      expect(rows[0]?.h).not.toBe(rows[1]?.h);
    },
  );

  it.skipIf(!target.available)(
    "rolls a failed transaction back and commits a good one",
    async () => {
      const d = source.dialect;
      await source.exec(`create table ${t("tx")} (id integer)`);
      const err = await source
        .transaction(async (tx) => {
          await tx.exec(`insert into ${t("tx")} values (${d.param(1)})`, [1]);
          expect(await tx.query(`select id from ${t("tx")}`)).toEqual([{ id: 1 }]);
          throw new SourceError("boom");
        })
        .catch((e: unknown) => e);
      expect((err as Error).message).toBe("boom");
      expect(await source.query(`select id from ${t("tx")}`)).toEqual([]);
      const out = await source.transaction(async (tx) => {
        await tx.exec(`insert into ${t("tx")} values (${d.param(1)})`, [2]);
        return "done";
      });
      expect(out).toBe("done");
      expect(await source.query(`select id from ${t("tx")}`)).toEqual([{ id: 2 }]);
    },
  );

  it.skipIf(!target.available)("refuses a lock another holder has", async () => {
    const other = target.name === "duckdb" ? source : await openTarget(target, schema);
    try {
      const lock = await source.tryLock("vip-users");
      expect(lock).not.toBeNull();
      expect(await other.tryLock("vip-users")).toBeNull();
      const unrelated = await other.tryLock("another-sync");
      expect(unrelated).not.toBeNull();
      await unrelated?.release();
      await lock?.release();
      const again = await other.tryLock("vip-users");
      expect(again).not.toBeNull();
      await again?.release();
    } finally {
      if (other !== source) await other.close();
    }
  });
});

describe("unreachable servers", () => {
  it.each([
    [
      "postgres",
      "postgres://audience:sekret-pw@127.0.0.1:1/db",
      /could not connect to PostgreSQL at 127\.0\.0\.1:1/,
    ],
    [
      "mysql",
      "mysql://audience:sekret-pw@127.0.0.1:1/db",
      /could not connect to MySQL\/MariaDB at 127\.0\.0\.1:1/,
    ],
  ] as const)(
    "%s: a clear error that names the settings and hides the password",
    async (type, url, pattern) => {
      const err = await openSource({ type, url, stateSchema: "s" }, { name: "warehouse" }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(SourceError);
      const message = (err as Error).message;
      expect(message).toMatch(pattern);
      expect(message).toContain("sources.warehouse.url");
      expect(message).not.toContain("sekret-pw");
      expect((err as SourceError).retryable).toBe(true);
    },
  );
});
