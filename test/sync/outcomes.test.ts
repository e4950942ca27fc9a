import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { OUTCOME_COLUMNS, workSetupSql, workTable } from "../../src/planner/sql.js";
import { openSource, type Source } from "../../src/sources/index.js";
import { type OutcomeRow, OutcomeWriter } from "../../src/sync/outcomes.js";

const TABLE = "outcomes_test";
/** the outcomes table lives with the run's work tables (DuckDB: the in-memory work catalog) */
let target = "";

function row(i: number, over: Partial<OutcomeRow> = {}): OutcomeRow {
  return {
    key: `u:${i}`,
    op: "subscribe",
    email: `user${i}@example.com`,
    userId: i % 3 === 0 ? null : `${i}`,
    status: "succeeded",
    code: null,
    message: null,
    ...over,
  };
}

describe("OutcomeWriter", () => {
  let source: Source;
  beforeEach(async () => {
    source = await openSource({ type: "duckdb", path: ":memory:", stateSchema: "state" });
    await source.ensureSchema("state");
    for (const sql of workSetupSql(source.dialect, "state")) await source.exec(sql);
    target = workTable(source.dialect, "state", TABLE);
    const cols = OUTCOME_COLUMNS.map((c) => `${c} ${c === "confirmed" ? "integer" : "varchar"}`);
    await source.exec(`create table ${target} (${cols.join(", ")})`);
  });
  afterEach(async () => {
    await source.close();
  });

  it("has every row in the table once flush resolves, whatever the chunk boundaries", async () => {
    const writer = new OutcomeWriter(source, TABLE, true, ["sekret"], 7);
    for (let i = 0; i < 100; i++) {
      const wait =
        i % 10 === 5
          ? writer.add(row(i, { status: "failed", code: "invalid_email", message: "sekret no" }))
          : i % 2 === 0
            ? writer.addSucceeded("subscribe", `u:${i}`, `user${i}@example.com`, null)
            : writer.add(row(i));
      if (wait) await wait;
    }
    await writer.flush();
    const rows = await source.query<{ identity: string; confirmed: number; error_message: string }>(
      `select identity, confirmed, error_message from ${target} order by identity`,
    );
    expect(rows).toHaveLength(100);
    expect(new Set(rows.map((r) => r.identity)).size).toBe(100);
    const failed = rows.filter((r) => r.confirmed === 0);
    expect(failed).toHaveLength(10);
    expect(failed.every((r) => !r.error_message.includes("sekret"))).toBe(true);
    expect(writer.tally.succeeded.subscribe).toBe(90);
    expect(writer.tally.failed.subscribe).toBe(10);
  });

  it("adding without awaiting still keeps one write at a time and loses nothing", async () => {
    const writer = new OutcomeWriter(source, TABLE, true, [], 3);
    const waits: Promise<void>[] = [];
    for (let i = 0; i < 50; i++) {
      const wait = writer.add(row(i));
      if (wait) waits.push(wait);
    }
    await Promise.all(waits);
    await writer.flush();
    const [count] = await source.query<{ n: number }>(`select count(*) as n from ${target}`);
    expect(count?.n).toBe(50);
  });

  it("a failed write is thrown by a later add or by flush", async () => {
    const writer = new OutcomeWriter(source, "no_such_table", true, [], 5);
    let thrown: unknown = null;
    try {
      for (let i = 0; i < 30; i++) {
        const wait = writer.add(row(i));
        if (wait) await wait;
      }
      await writer.flush();
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(Error);
    await expect(writer.flush()).rejects.toThrow();
  });
});
