/**
 * The identity rules exist twice: as SQL (src/planner/sql.ts, run inside each warehouse) and as
 * TypeScript (src/identity). These properties show the two agree, per dialect, on random and
 * adversarial values: the userId rule exactly, email normalisation exactly (for the characters
 * whose lowercase every database agrees on, see test/sources/dialect.test.ts), and the identity
 * of every row that TypeScript accepts.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { normalizeEmail } from "../../src/identity/email.js";
import { validateRow } from "../../src/identity/rules.js";
import { userIdProblem } from "../../src/identity/userId.js";
import type { ProjectType } from "../../src/iterable/wire.js";
import { identitySql, validUserIdSql } from "../../src/planner/sql.js";
import { JS_WHITESPACE } from "../../src/sources/dialects.js";
import type { Source } from "../../src/sources/source.js";
import { availableDialects, createWarehouse, type TestWarehouse } from "../support/sources.js";

const dialects = await availableDialects();

const whitespace = JS_WHITESPACE.map((c) => String.fromCodePoint(c));
const letters = [..."ÀÉÎÕÜàéîõüßÆæØøÅåΑΒΓαβγДЖЯджяŁłŒœ"];
const piece = fc.oneof(
  fc.constantFrom(
    ...whitespace,
    ...letters,
    "@",
    ".",
    "'",
    '"',
    "\\",
    "%",
    "_",
    "`",
    "\x7f",
    "\x1f",
    "😀",
    "~",
    "ABC",
    "x".repeat(52),
    "y".repeat(53),
  ),
  fc.string({ unit: "grapheme-ascii", maxLength: 6 }),
);
const text = fc.array(piece, { maxLength: 8 }).map((a) => a.join(""));
const emailish = fc.oneof(
  text,
  fc
    .tuple(
      fc.constantFrom("", " ", "\t", "\u00a0"),
      fc.emailAddress(),
      fc.constantFrom("", " ", "\n", "\u3000"),
    )
    .map(([a, e, b]) => `${a}${e.toUpperCase()}${b}`),
);
const nullable = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: null, freq: 5 });
const boundaryIds = fc.constantFrom(
  "a".repeat(51),
  "b".repeat(52),
  "c".repeat(53),
  " d",
  "e ",
  "f\tg",
  "",
  "ñ",
  "~!",
);
const printableId = fc.string({
  unit: fc.constantFrom(..." !#$%&()*+,-./0123456789:;<=>?@ABCXYZ[]^_`abcxyz{|}~"),
  minLength: 45,
  maxLength: 56,
});
const rowArb = fc.record({
  email: nullable(emailish),
  userId: nullable(fc.oneof(text, boundaryIds, printableId)),
});

/** The SQL's identity, restated in TypeScript: email validity is judged later, outside SQL. */
function expectedSqlIdentity(
  projectType: ProjectType,
  email: string | null,
  userId: string | null,
): string | null {
  const e = normalizeEmail(email);
  const uidOk = userId !== null && userIdProblem(userId) === null;
  const byEmail = e !== null && [...e].length <= 320 ? `e:${e}` : null;
  if (projectType === "email") return byEmail;
  if (projectType === "userId") return uidOk ? `u:${userId}` : null;
  return uidOk ? `u:${userId}` : byEmail;
}

describe.each(dialects)("identity SQL agrees with TypeScript on %s", (dialect) => {
  let w: TestWarehouse;
  let source: Source;
  let table: string;

  beforeAll(async () => {
    w = await createWarehouse(dialect);
    source = await w.open();
    const d = source.dialect;
    await source.ensureSchema(w.dataSchema);
    table = d.table(w.dataSchema, "props");
    const type =
      d.name === "mysql" ? "varchar(2000) character set utf8mb4 collate utf8mb4_bin" : "varchar";
    await source.exec(`create table ${table} (id int, email ${type}, uid ${type})`);
  });
  afterAll(async () => {
    await source?.close();
    await w?.cleanup();
  });

  async function evaluate(
    rows: { email: string | null; userId: string | null }[],
    projectType: ProjectType,
  ) {
    const d = source.dialect;
    await source.exec(`delete from ${table}`);
    await source.insertRows(
      w.dataSchema,
      "props",
      ["id", "email", "uid"],
      [rows.map((r, i) => [i, r.email, r.userId])],
    );
    const e = `nullif(${d.trimLower(d.castText("t.email"))}, '')`;
    const u = `nullif(${d.castText("t.uid")}, '')`; // as buildRowsSql reads it
    const out = await source.query(
      `select t.id, ${e} as e, case when ${validUserIdSql(d, u)} then 1 else 0 end as uid_ok, ${identitySql(d, projectType, e, u)} as identity from ${table} t order by t.id`,
    );
    return out.map((r) => ({
      e: r.e === null ? null : String(r.e),
      uidOk: Number(r.uid_ok) === 1,
      identity: r.identity === null ? null : String(r.identity),
    }));
  }

  for (const projectType of ["email", "userId", "hybrid"] as const) {
    it(`${projectType}: normalisation, userId rule and identity`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(rowArb, { minLength: 1, maxLength: 40 }), async (rows) => {
          const got = await evaluate(rows, projectType);
          rows.forEach((row, i) => {
            const g = got[i];
            expect(g?.e, `email ${JSON.stringify(row.email)}`).toBe(normalizeEmail(row.email));
            if (row.userId !== null) {
              expect(g?.uidOk, `userId ${JSON.stringify(row.userId)}`).toBe(
                userIdProblem(row.userId) === null,
              );
            }
            expect(g?.identity).toBe(expectedSqlIdentity(projectType, row.email, row.userId));
            // every row TypeScript accepts has the same identity in SQL
            const verdict = validateRow(projectType, { email: row.email, userId: row.userId });
            if (verdict.ok) expect(g?.identity).toBe(verdict.identity);
          });
        }),
        { numRuns: 25 },
      );
    });
  }
});
