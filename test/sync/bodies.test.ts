/**
 * One run whose subscribes go both ways (src/sync/deliver.ts): plain members in request bodies
 * built by the warehouse (DuckDB), the rest record by record. Whatever way a record goes, the
 * list, the report, the sync logs and the next run's retries must be the same: the scenario runs
 * on every warehouse (only DuckDB builds bodies) and the results are compared.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmulator } from "../../src/emulator/index.js";
import type { DialectName } from "../../src/sources/source.js";
import { resolvedSync } from "../support/config.js";
import { runOnce } from "../support/run.js";
import { availableDialects, createWarehouse, withSource, writeTable } from "../support/sources.js";

const dialects = await availableDialects();
const KEY = "test-server-key-bodies-42";

/** email, uid: plain members (built), members needing TypeScript (recorded), failures. */
const ROWS: [string | null, string | null][] = [
  ...Array.from({ length: 12 }, (_, i): [string, string | null] => [
    `p${i}@example.com`,
    i % 3 === 0 ? null : `u${i}`,
  ]),
  ["jöe@exämple.com", "u-unicode"], // valid, non-ASCII: record by record
  ["not-an-email", "u-warn"], // userId member sent without its invalid email (a warning)
  ["forgotten@example.com", null], // plain, but Iterable refuses it: the batch is classified
  ["p99@example.com", "u-unknown"], // plain; updateExistingUsersOnly: user_not_found
  ["bad@@example.com", null], // invalid: never sent
];

interface Summary {
  members: string[];
  status: string;
  succeeded: number;
  failed: number;
  byCode: Record<string, number>;
  logs: string[];
}

async function scenario(dialect: DialectName): Promise<Summary[]> {
  const w = await createWarehouse(dialect);
  const em = await startEmulator({ port: 0, projectType: "hybrid", apiKey: KEY });
  try {
    em.state.forgetUser({ email: "forgotten@example.com" });
    for (const [email, userId] of ROWS) {
      if (userId !== "u-unknown" && email !== "forgotten@example.com") {
        em.state.addUser(userId ? { userId } : { email: (email ?? "").normalize() });
      }
    }
    const r = resolvedSync(w, em, "hybrid", "m", {
      apiKey: KEY,
      batchSize: 4,
      extra: "    updateExistingUsersOnly: true",
    });
    const out: Summary[] = [];
    for (let round = 0; round < 2; round++) {
      await withSource(w, (s) =>
        writeTable(s, w.dataSchema, "m", ["email", "uid"], round === 0 ? ROWS : ROWS.slice(3)),
      );
      const report = await runOnce(w, r);
      const listId = report.list?.id ?? -1;
      const logs = await withSource(w, (s) =>
        s.query(
          `select operation, record_key, email, user_id, status, error_code from ${s.dialect.table(s.stateSchema, "sync_logs")} where run_id = ${report.runId}`,
        ),
      );
      out.push({
        members: em.state
          .members(listId)
          .map((m) => `${m.email ?? ""}|${m.userId ?? ""}`)
          .sort(),
        status: report.status,
        succeeded: report.succeeded.subscribe + report.succeeded.unsubscribe,
        failed: report.failed.subscribe + report.failed.unsubscribe,
        byCode: report.failuresByCode as Record<string, number>,
        logs: logs
          .map((l) =>
            [l.operation, l.record_key, l.email, l.user_id, l.status, l.error_code].join(" "),
          )
          .sort(),
      });
    }
    return out;
  } finally {
    await em.close();
    await w.cleanup();
  }
}

describe("subscribes built by the warehouse and sent record by record agree", () => {
  const results = new Map<DialectName, Summary[]>();
  beforeAll(async () => {
    for (const d of dialects) results.set(d, await scenario(d));
  }, 120_000);
  afterAll(() => results.clear());

  it("DuckDB: the list, the report and the logs are right", () => {
    const [first, second] = results.get("duckdb") ?? [];
    expect(first?.status).toBe("completed_with_failures");
    expect(first?.byCode).toEqual({
      forgotten_user: 1,
      user_not_found: 1,
      invalid_email: 1,
    });
    // 12 plain members, the unicode one and the userId one without its email
    expect(first?.members).toHaveLength(14);
    expect(first?.members).toContain("|u-warn");
    expect(first?.members).toContain("jöe@exämple.com|u-unicode");
    expect(first?.members).not.toContain("forgotten@example.com|");
    expect(first?.logs.filter((l) => l.includes(" succeeded "))).toHaveLength(14);
    expect(first?.logs).toContain(
      "subscribe e:forgotten@example.com forgotten@example.com  failed forgotten_user",
    );
    expect(first?.logs).toContain(
      "subscribe u:u-unknown p99@example.com u-unknown failed user_not_found",
    );
    expect(
      first?.logs.some((l) =>
        l.startsWith("subscribe u:u-warn not-an-email u-warn succeeded invalid_email"),
      ),
    ).toBe(true);
    // the second run unsubscribes the three removed rows and retries only the unknown user
    expect(second?.members).toHaveLength(11);
    expect(second?.logs.filter((l) => l.startsWith("unsubscribe"))).toHaveLength(3);
    expect(second?.logs.filter((l) => l.startsWith("subscribe"))).toEqual([
      "subscribe e:bad@@example.com bad@@example.com  failed invalid_email",
      "subscribe u:u-unknown p99@example.com u-unknown failed user_not_found",
    ]);
  });

  for (const d of dialects.filter((x) => x !== "duckdb")) {
    it(`${d} gives the same results record by record`, () => {
      expect(results.get(d)).toEqual(results.get("duckdb"));
    });
  }
});
