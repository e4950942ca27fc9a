import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openSource, type Source } from "../../src/sources/index.js";

// Large batches whose columns hold one value throughout are written partly by the INSERT itself;
// what lands must be what the appender writes cell by cell.
describe("duckdb insertRows with constant columns", () => {
  let source: Source;
  beforeEach(async () => {
    source = await openSource({ type: "duckdb", path: ":memory:", stateSchema: "state" });
    await source.exec(
      "create table t (a varchar, b integer, c varchar, d bigint, e double, f varchar, g varchar)",
    );
  });
  afterEach(async () => {
    await source.close();
  });

  const read = () =>
    source.query<Record<string, unknown>>("select a, b, c, d, e, f, g from t order by a");

  it("writes constant text, integers, nulls and doubles as the appender would", async () => {
    const rows = Array.from({ length: 1500 }, (_, i) => [
      `k${String(i).padStart(5, "0")}`,
      7,
      "it's ✓ 'quoted'",
      null,
      1.5,
      "",
      i === 1499 ? "last" : "same", // constant but for one row
    ]);
    const n = await source.insertRows("main", "t", ["a", "b", "c", "d", "e", "f", "g"], [rows]);
    expect(n).toBe(1500);
    const got = await read();
    expect(got).toHaveLength(1500);
    expect(got[0]).toEqual({
      a: "k00000",
      b: 7,
      c: "it's ✓ 'quoted'",
      d: null,
      e: 1.5,
      f: "",
      g: "same",
    });
    expect(got[1499]?.g).toBe("last");
    expect(new Set(got.map((r) => `${r.b}|${r.c}|${r.d}|${r.e}|${r.f}`))).toEqual(
      new Set(["7|it's ✓ 'quoted'|null|1.5|"]),
    );
  });

  it("takes a column list in another order and a number into a text column as JS prints it", async () => {
    const rows = Array.from({ length: 1200 }, (_, i) => [12, `k${i}`, 3]);
    await source.insertRows("main", "t", ["g", "a", "b"], [rows]);
    const got = await source.query<{ g: string; b: number; c: string | null }>(
      "select distinct g, b, c from t",
    );
    expect(got).toEqual([{ g: "12", b: 3, c: null }]);
  });

  it("splits nothing across batches: a column constant within one batch only is appended", async () => {
    const one = Array.from({ length: 800 }, (_, i) => [`x${i}`, 1]);
    const two = Array.from({ length: 800 }, (_, i) => [`y${i}`, 2]);
    await source.insertRows("main", "t", ["a", "b"], [one, two]);
    const got = await source.query<{ b: number; n: number }>(
      "select b, count(*)::integer as n from t group by b order by b",
    );
    expect(got).toEqual([
      { b: 1, n: 800 },
      { b: 2, n: 800 },
    ]);
  });
});
