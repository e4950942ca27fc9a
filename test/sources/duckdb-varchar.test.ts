import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openSource, type Source } from "../../src/sources/index.js";

// Strings around DuckDB's 12-byte inline limit, multi-byte and BOM-led, empty and null.
const SAMPLES: (string | null)[] = [
  "",
  "a",
  "twelve bytes",
  "thirteen byte",
  "user123456@example.com",
  "é",
  "ééééééé", // 14 bytes in UTF-8, 7 characters
  "\uFEFFbom",
  "\uFEFFa longer value with a bom",
  "😀",
  'quote " and \\ backslash',
  null,
];

function expected(i: number): { i: number; s: string | null; t: string | null } {
  const s = i % 97 === 0 || i % 13 === 5 ? null : `${SAMPLES[i % SAMPLES.length] ?? "x"}${i}`;
  return { i, s, t: i % 3 === 0 ? null : String(i).repeat(i % 5) };
}

describe("duckdb source streaming VARCHAR columns", () => {
  let source: Source;
  beforeAll(async () => {
    source = await openSource({ type: "duckdb", path: ":memory:", stateSchema: "state" });
    await source.exec("create table v (i integer, s varchar, t varchar)");
    const rows = Array.from({ length: 5000 }, (_, i) => {
      const e = expected(i);
      return [e.i, e.s, e.t];
    });
    await source.insertRows("main", "v", ["i", "s", "t"], [rows]);
  });
  afterAll(async () => {
    await source.close();
  });

  it("reads every value as written, nulls in place, across several chunks", async () => {
    const got: { i: number; s: string | null; t: string | null }[] = [];
    for await (const batch of source.stream<{ i: number; s: string | null; t: string | null }>(
      "select i, s, t from v order by i",
      [],
      1234,
    )) {
      got.push(...batch);
    }
    expect(got).toHaveLength(5000);
    for (const row of got) expect(row).toEqual(expected(row.i));
  });

  it("reads the same values through query", async () => {
    const got = await source.query<{ i: number; s: string | null }>(
      "select i, s from v where i < 100 order by i",
    );
    expect(got.map((r) => r.s)).toEqual(got.map((r) => expected(r.i).s));
  });
});
