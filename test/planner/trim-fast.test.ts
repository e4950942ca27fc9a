/**
 * The fast path of email normalisation (trimLowerFast, DuckDB and PostgreSQL) returns exactly what
 * the dialect's trimLower returns, for random and adversarial strings: whitespace of every kind at
 * either end, non-ASCII first or last characters, control characters, empty strings and NULL.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { trimLowerFast } from "../../src/planner/sql.js";
import { JS_WHITESPACE } from "../../src/sources/dialects.js";
import { openDuckDb } from "../../src/sources/duckdb.js";
import type { Source } from "../../src/sources/source.js";
import { postgresAvailable } from "../support/services.js";
import { createWarehouse, type TestWarehouse } from "../support/sources.js";

const edge = fc.oneof(
  fc.constantFrom(...JS_WHITESPACE.map((c) => String.fromCodePoint(c))),
  fc.constantFrom("\u0085", "\u180e", "\u200b", "\x00", "\x1f", "\x7f", "!", "~", " ", "É", "ß"),
  fc.string({ unit: "binary", maxLength: 2 }),
  fc.string({ maxLength: 2 }),
);
const value = fc.oneof(
  fc.constant(null),
  fc.tuple(edge, fc.string({ unit: "grapheme", maxLength: 8 }), edge).map((p) => p.join("")),
  fc.string({ unit: "binary", maxLength: 6 }),
);

const hasPg = await postgresAvailable();

async function agrees(
  source: Source,
  schema: string,
  table: string,
  clean: (v: string | null) => string | null = (v) => v,
): Promise<void> {
  const d = source.dialect;
  const t = d.table(schema, table);
  await fc.assert(
    fc.asyncProperty(fc.array(value, { minLength: 1, maxLength: 50 }), async (raw) => {
      const values = raw.map(clean);
      await source.exec(`delete from ${t}`);
      await source.insertRows(schema, table, ["id", "v"], [values.map((v, i) => [i, v])]);
      const rows = await source.query(
        `select id, ${trimLowerFast(d, "v")} as fast, ${d.trimLower("v")} as slow from ${t} order by id`,
      );
      expect(rows).toHaveLength(values.length);
      for (const r of rows) {
        expect(r.fast, `value ${JSON.stringify(values[Number(r.id)])}`).toBe(r.slow);
      }
    }),
    { numRuns: 100 },
  );
}

describe.skipIf(!hasPg)("trimLowerFast on postgres", () => {
  let w: TestWarehouse;
  let source: Source;
  beforeAll(async () => {
    w = await createWarehouse("postgres");
    source = await w.open();
    await source.exec(`create table ${source.dialect.table(w.dataSchema, "t")} (id int, v text)`);
  });
  afterAll(async () => {
    await source?.close();
    await w?.cleanup();
  });

  it("agrees with trimLower", async () => {
    // PostgreSQL text holds no NUL character
    await agrees(source, w.dataSchema, "t", (v) => (v === null ? v : v.replaceAll("\0", "")));
  });

  it("takes the fast path only for all-ASCII values with nothing to trim", () => {
    expect(trimLowerFast(source.dialect, "v")).toContain("octet_length(v) = char_length(v)");
  });
});

describe("trimLowerFast on duckdb", () => {
  let source: Source;
  beforeAll(async () => {
    source = await openDuckDb({ path: ":memory:", stateSchema: "s" });
    await source.exec("create table t (id int, v varchar)");
  });
  afterAll(async () => {
    await source?.close();
  });

  it("agrees with trimLower", async () => {
    const d = source.dialect;
    await fc.assert(
      fc.asyncProperty(fc.array(value, { minLength: 1, maxLength: 50 }), async (values) => {
        await source.exec("delete from t");
        await source.insertRows("main", "t", ["id", "v"], [values.map((v, i) => [i, v])]);
        const rows = await source.query(
          `select id, ${trimLowerFast(d, "v")} as fast, ${d.trimLower("v")} as slow from t order by id`,
        );
        expect(rows).toHaveLength(values.length);
        for (const r of rows) {
          expect(r.fast, `value ${JSON.stringify(values[Number(r.id)])}`).toBe(r.slow);
        }
      }),
      { numRuns: 100 },
    );
  });

  it("takes the fast path only where nothing could be trimmed", () => {
    expect(trimLowerFast(source.dialect, "v")).toContain("between 33 and 126");
  });
});
