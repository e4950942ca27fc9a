/**
 * Request bodies built in the warehouse (src/planner/bulk.ts). The SQL that calls an email
 * "surely valid" may refuse valid ones but must never accept one src/identity refuses: checked
 * on the conformance vectors and on random, adversarial addresses. The JSON it builds must be
 * exactly what the client would have serialised for the same record.
 */

import { readFileSync } from "node:fs";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isValidEmail } from "../../src/identity/email.js";
import { validateRow } from "../../src/identity/rules.js";
import { subscriberJson } from "../../src/iterable/batching.js";
import type { ProjectType } from "../../src/iterable/wire.js";
import {
  batchRuns,
  buildableSql,
  buildsBodies,
  MAX_SUBSCRIBER_BYTES,
  plainEmailSql,
  subscriberJsonSql,
} from "../../src/planner/bulk.js";
import type { Source } from "../../src/sources/source.js";
import { createWarehouse, type TestWarehouse } from "../support/sources.js";

const vectors = JSON.parse(
  readFileSync(new URL("../fixtures/email-vectors.json", import.meta.url), "utf8"),
) as { valid: string[]; invalid: string[] };

const local = fc.stringMatching(/^[a-z0-9!#$%&'*+/=?^_`{|}~.-]{0,70}$/);
const label = fc.oneof(
  fc.stringMatching(/^[a-z0-9-]{0,66}$/),
  fc.constantFrom("com", "org", "xn--p1ai", "museum", "co", "c", "comm", "invalidtld", "-a", "a-"),
);
const tld = fc.constantFrom("com", "org", "io", "de", "xn--p1ai", "museum", "zz", "c0m", "1com");
/** Addresses near the edge of the plain form: dots, hyphens, long parts, odd characters. */
const plainish = fc.oneof(
  fc
    .tuple(local, fc.array(label, { minLength: 0, maxLength: 4 }), tld)
    .map(([l, labels, t]) => `${l}@${[...labels, t].join(".")}`),
  fc
    .tuple(local, fc.constantFrom('"', "\\", " ", "@", "(", "é", "\u0000", "A", "[", ".."), local)
    .map(([a, x, b]) => `${a}${x}${b}@example.com`),
  fc.emailAddress().map((e) => e.toLowerCase()),
  fc.string({ maxLength: 30 }),
);

describe("bodies built in DuckDB", () => {
  let w: TestWarehouse;
  let source: Source;

  beforeAll(async () => {
    w = await createWarehouse("duckdb");
    source = await w.open();
    await source.exec("create table main.props (i int, e varchar, u varchar)");
  });
  afterAll(async () => {
    await source?.close();
    await w?.cleanup();
  });

  /** Evaluates SQL expressions over rows (e, u), as the plan table holds them ('' userId: NULL). */
  async function evaluate(
    rows: { email: string | null; userId: string | null }[],
    columns: string,
  ) {
    await source.exec("delete from main.props");
    await source.insertRows(
      "main",
      "props",
      ["i", "e", "u"],
      [rows.map((r, i) => [i, r.email, r.userId])],
    );
    return source.query(
      `select ${columns} from (select i, e, nullif(u, '') as u from main.props) x order by i`,
    );
  }

  async function plain(emails: string[]): Promise<boolean[]> {
    const rows = emails.map((email) => ({ email, userId: null }));
    const got = await evaluate(rows, `${plainEmailSql(source.dialect, "e")} as ok`);
    return got.map((r) => r.ok === true);
  }

  it("works where bodies are built", () => {
    expect(buildsBodies(source.dialect)).toBe(true);
  });

  it("never accepts an email src/identity refuses, and accepts the plain ones", async () => {
    const all = [...vectors.valid, ...vectors.invalid].map((e) => e.toLowerCase());
    const got = await plain(all);
    all.forEach((e, i) => {
      if (got[i]) expect(isValidEmail(e), e).toBe(true);
    });
    const common = [
      "jsmith@apache.org",
      "joe.blow+tag@mail.example.co.uk",
      "a@b.io",
      "o'brien@example.com",
      "x@xn--p1ai.xn--p1ai",
      `${"l".repeat(64)}@example.com`,
    ];
    expect(await plain(common)).toEqual(common.map(() => true));
    const refused = [
      `${"l".repeat(65)}@example.com`,
      `a@${"d".repeat(63)}.${"d".repeat(63)}.${"d".repeat(63)}.${"d".repeat(60)}.com`,
      "a@example.invalidtld",
      "a..b@example.com",
      ".a@example.com",
      "a@-example.com",
      "A@example.com",
      "a@example.com.",
      "a@[127.0.0.1]",
    ];
    expect(await plain(refused)).toEqual(refused.map(() => false));
  });

  it("builds plain hybrid and userId members, and leaves userIds with a quote, a backslash or a space at an end to the record path", async () => {
    // what a hybrid project and (rows with a userId) a userId project build
    const rows = [
      { email: "a@example.com", userId: "u1", hybrid: true, userIdOnly: true },
      { email: null, userId: "user-42_x.y", hybrid: true, userIdOnly: true },
      { email: "b@example.com", userId: null, hybrid: true, userIdOnly: null },
      { email: "c@example.com", userId: 'a"b', hybrid: false, userIdOnly: false },
      { email: null, userId: "c\\d", hybrid: false, userIdOnly: false },
      { email: "D@example.com", userId: "u2", hybrid: false, userIdOnly: true },
      { email: null, userId: "x".repeat(52), hybrid: true, userIdOnly: true },
      { email: null, userId: "y".repeat(53), hybrid: false, userIdOnly: false },
      { email: null, userId: "a b!~#[]", hybrid: true, userIdOnly: true },
      { email: null, userId: " p", hybrid: false, userIdOnly: false },
      { email: "e@example.com", userId: "q ", hybrid: false, userIdOnly: false },
    ];
    const got = await evaluate(rows, `${buildableSql(source.dialect, "hybrid", "e", "u")} as ok`);
    expect(got.map((r) => r.ok)).toEqual(rows.map((r) => r.hybrid));
    const withUserId = rows.filter((r) => r.userId !== null);
    const users = await evaluate(
      withUserId,
      `${buildableSql(source.dialect, "userId", "e", "u")} as ok`,
    );
    expect(users.map((r) => r.ok)).toEqual(withUserId.map((r) => r.userIdOnly));
  });

  it("never accepts an email src/identity refuses (random and adversarial)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(plainish, { minLength: 1, maxLength: 50 }), async (emails) => {
        const got = await plain(emails);
        emails.forEach((e, i) => {
          if (got[i]) expect(isValidEmail(e), JSON.stringify(e)).toBe(true);
        });
      }),
      { numRuns: 40 },
    );
  });

  const ids = fc.oneof(
    fc.constantFrom('a"b', "c\\d", '\\"', "x".repeat(52), "y".repeat(53), " p", "q ", "ü", ""),
    fc.string({ unit: "grapheme-ascii", maxLength: 54 }),
  );
  const rows = fc.array(
    fc.record({
      email: fc.option(fc.oneof(plainish, fc.constant("joe@example.com")), { nil: null }),
      userId: fc.option(ids, { nil: null }),
    }),
    { minLength: 1, maxLength: 30 },
  );

  for (const projectType of ["email", "userId", "hybrid"] as ProjectType[]) {
    it(`${projectType}: a buildable record is valid, without warning, and its JSON is the client's`, async () => {
      const d = source.dialect;
      await fc.assert(
        fc.asyncProperty(rows, async (sample) => {
          const got = await evaluate(
            sample,
            `${buildableSql(d, projectType, "e", "u")} as ok, ${subscriberJsonSql(projectType, "e", "u")} as json`,
          );
          sample.forEach((r, i) => {
            const g = got[i];
            if (g?.ok !== true) return;
            const verdict = validateRow(projectType, r);
            expect(verdict.ok, JSON.stringify(r)).toBe(true);
            if (!verdict.ok) return;
            expect(verdict.warnings).toEqual([]);
            const json = JSON.stringify(subscriberJson({ key: verdict.identity, ...verdict }));
            expect(String(g.json)).toBe(json);
            expect(Buffer.byteLength(json)).toBeLessThanOrEqual(MAX_SUBSCRIBER_BYTES);
          });
        }),
        { numRuns: 30 },
      );
    });
  }
});

describe("batchRuns", () => {
  it("merges consecutive batch numbers, in order, without repeats", () => {
    expect(batchRuns([])).toEqual([]);
    expect(batchRuns([3, 1, 2, 7, 5, 6, 9, 9])).toEqual([
      [1, 3],
      [5, 7],
      [9, 9],
    ]);
  });
});
