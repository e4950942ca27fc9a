/**
 * The dialects' string functions computed by the real databases, against their JS definitions:
 *   trimLower(s) = s.trim().toLowerCase(); length(s) = [...s].length;
 *   isPrintableAscii(s) = /^[\x20-\x7e]*$/.test(s)
 * Trim, length and the ASCII test are exact for every string a database can store (no NUL:
 * PostgreSQL text cannot hold it). Lowercasing is exact for ASCII and for the Latin, Greek and
 * Cyrillic letters in COMMON_LETTERS; docs/sources.md lists where databases differ from JS beyond
 * that (U+0130, final sigma, scripts newer than the database's Unicode tables).
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JS_WHITESPACE } from "../../src/sources/dialects.js";
import type { Source } from "../../src/sources/index.js";
import { openTarget, type Target, targets, uniqueSchema } from "./harness.js";

const jsLength = (s: string) => [...s].length;
const jsPrintable = (s: string) => /^[\x20-\x7e]*$/.test(s);

const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => String.fromCodePoint(from + i));
// U+0130 (İ lowercases to two code points in JS), U+03A3 (Σ: JS picks ς or σ from context) and
// U+037F (missing from MariaDB's Unicode 5.2 tables) are the exceptions named in the docs.
const EXCLUDED = new Set(["\u0130", "\u03a3", "\u037f"]);
const COMMON_LETTERS = [
  ...range(0xc0, 0x24f),
  ...range(0x370, 0x3ff),
  ...range(0x400, 0x4ff),
].filter((c) => !EXCLUDED.has(c) && c.toLowerCase() !== c.toUpperCase());

const whitespace = JS_WHITESPACE.map((c) => String.fromCodePoint(c));
const adversarial = fc.constantFrom(
  ...whitespace,
  "\u0085", // NEL: not JS whitespace
  "\u180e", // Mongolian vowel separator: whitespace before Unicode 6.3, not in JS now
  "\u200b", // zero-width space: not JS whitespace
  "'",
  '"',
  "`",
  "\\",
  "\\'",
  "''",
  "?",
  "$1",
  "%",
  "_",
  "\u0130",
  "\u03a3",
  "\u212a", // Kelvin sign: case-folds to ASCII k in *_ci collations
  "\u017f", // long s: case-folds to ASCII s
  "😀",
  "e\u0301",
  "\x7f",
  "\x1f",
  "~",
  " ",
  "ABC",
  "x".repeat(52),
  "y".repeat(53),
);
const anyString = fc
  .oneof(
    fc.string({ unit: "binary", maxLength: 60 }),
    fc
      .array(fc.oneof(adversarial, fc.string({ unit: "binary-ascii", maxLength: 4 })), {
        maxLength: 10,
      })
      .map((a) => a.join("")),
    fc.string({ unit: "grapheme-ascii", minLength: 50, maxLength: 55 }),
  )
  .map((s) => s.replaceAll("\0", ""));

const lowerable = fc
  .array(
    fc.oneof(
      fc.constantFrom(...COMMON_LETTERS),
      fc.constantFrom(...whitespace),
      fc.string({ unit: "grapheme-ascii", maxLength: 5 }),
    ),
    { maxLength: 20 },
  )
  .map((a) => a.join(""));

describe.each(targets)("$name dialect", (target: Target) => {
  let source: Source;
  let schema: string;
  beforeAll(async () => {
    if (!target.available) return;
    schema = uniqueSchema(`d${target.name.slice(0, 2)}`);
    source = await openTarget(target, schema);
  });
  afterAll(async () => {
    if (!source) return;
    await target.drop(source, schema);
    await source.close();
  });

  /** Evaluates the dialect's functions over many strings in one query (literals, not params). */
  async function evaluate(strings: string[]) {
    const d = source.dialect;
    const selects = strings.map(
      (s, i) =>
        `select ${i} as i, ${d.trimLower(d.literal(s))} as tl, ${d.trimLower(d.literal(s.trim()))} as tl2, ` +
        `${d.length(d.literal(s))} as len, ${d.isPrintableAscii(d.literal(s))} as pa, ${d.literal(s)} as s`,
    );
    const rows = await source.query<{
      i: number;
      tl: string;
      tl2: string;
      len: number;
      pa: unknown;
      s: string;
    }>(`select * from (${selects.join(" union all ")}) x order by i`);
    return rows.map((r) => ({ ...r, len: Number(r.len), pa: r.pa === true || Number(r.pa) === 1 }));
  }

  it.skipIf(!target.available)(
    "literal() round-trips, and trim, length and the ASCII test match JS",
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(anyString, { minLength: 1, maxLength: 40 }), async (strings) => {
          const rows = await evaluate(strings);
          strings.forEach((s, i) => {
            const row = rows[i];
            expect(row?.s).toBe(s);
            // Lowercasing the JS-trimmed string in the database isolates the trim.
            expect(row?.tl).toBe(row?.tl2);
            expect(row?.len).toBe(jsLength(s));
            expect(row?.pa).toBe(jsPrintable(s));
          });
        }),
        { numRuns: 60 },
      );
    },
  );

  it.skipIf(!target.available)(
    "trimLower equals s.trim().toLowerCase() over ASCII and common letters",
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(lowerable, { minLength: 1, maxLength: 40 }), async (strings) => {
          const rows = await evaluate(strings);
          strings.forEach((s, i) => {
            expect(rows[i]?.tl).toBe(s.trim().toLowerCase());
          });
        }),
        { numRuns: 60 },
      );
    },
  );

  it.skipIf(!target.available)("trims exactly the JS whitespace set", async () => {
    const cases = [
      ...whitespace.map((w) => `${w}Ab${w}`),
      "\u0085x\u0085",
      "\u180ex\u180e",
      "\u200bx\u200b",
      " \t\n\r\v\f a b \u3000\ufeff",
      "",
      "   ",
    ];
    const rows = await evaluate(cases);
    cases.forEach((s, i) => {
      expect(rows[i]?.tl).toBe(s.trim().toLowerCase());
    });
  });

  it.skipIf(!target.available || target.name !== "postgres")(
    "postgres with ICU lowercases like JS beyond the common letters (İ, final sigma)",
    async () => {
      const cases = ["\u0130STANBUL", "ΟΔΟΣ ΟΔΟΣ", "ΣΑ", "Ꭰ𐐀"];
      const rows = await evaluate(cases);
      cases.forEach((s, i) => {
        expect(rows[i]?.tl).toBe(s.trim().toLowerCase());
      });
    },
  );

  it.skipIf(!target.available)("hash tells NULL, '' and shifted values apart", async () => {
    const d = source.dialect;
    const tuples: (string | null)[][] = [
      [null, null],
      ["", null],
      [null, ""],
      ["", ""],
      ["a", "bc"],
      ["ab", "c"],
      ["a:", "b"],
      ["a", ":b"],
      ["v1:a", null],
      ["1", "2"],
    ];
    const selects = tuples.map(
      (t, i) =>
        `select ${i} as i, ${d.hash(t.map((v) => (v === null ? `cast(null as ${target.name === "mysql" ? "char" : "varchar"})` : d.literal(v))))} as h`,
    );
    const rows = await source.query<{ i: number; h: string }>(
      `select * from (${selects.join(" union all ")}) x order by i`,
    );
    expect(new Set(rows.map((r) => r.h)).size).toBe(tuples.length);
    const again = await source.query<{ i: number; h: string }>(
      `select * from (${selects.join(" union all ")}) x order by i`,
    );
    expect(again).toEqual(rows);
  });
});
