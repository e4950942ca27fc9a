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

  it("reads the same values through query, across several chunks", async () => {
    const got = await source.query<{ i: number; s: string | null; t: string | null }>(
      "select i, s, t from v order by i",
    );
    expect(got).toHaveLength(5000);
    for (const row of got) expect(row).toEqual(expected(row.i));
  });

  it("reads BLOBs as Buffers of their bytes, short and long, nulls in place", async () => {
    // encode(): the UTF-8 bytes of s; blobs of up to 12 bytes are inlined in the vector
    const sql = "select i, encode(s) as b from v order by i";
    const check = (rows: { i: number; b: unknown }[]) => {
      expect(rows).toHaveLength(5000);
      for (const row of rows) {
        const s = expected(row.i).s;
        if (s === null) expect(row.b).toBeNull();
        else {
          expect(Buffer.isBuffer(row.b)).toBe(true);
          expect((row.b as Buffer).equals(Buffer.from(s))).toBe(true);
        }
      }
      // each long blob owns its memory: none is a view over a buffer the next one reuses
      const long = rows.map((r) => r.b as Buffer | null).filter((b) => b !== null && b.length > 12);
      expect(new Set(long.map((b) => b?.buffer)).size).toBe(long.length);
    };
    check(await source.query<{ i: number; b: unknown }>(sql));
    const streamed: { i: number; b: unknown }[] = [];
    for await (const batch of source.stream<{ i: number; b: unknown }>(sql, [], 777)) {
      streamed.push(...batch);
    }
    check(streamed);
  });
});
