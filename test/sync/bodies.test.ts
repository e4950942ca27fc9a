/**
 * Runs whose subscribes and unsubscribes go both ways (src/sync/deliver.ts): plain records in
 * request bodies built by the warehouse (DuckDB), the rest record by record. Whatever way a record
 * goes, the list, the report, the sync logs and the next run's retries must be the same: the
 * scenarios run on every warehouse (only DuckDB builds bodies) and the results are compared.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type Emulator, startEmulator } from "../../src/emulator/index.js";
import { IterableClient } from "../../src/iterable/client.js";
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

/** What one run left: the list, the report, its sync logs. */
async function summary(
  w: Awaited<ReturnType<typeof createWarehouse>>,
  em: Emulator,
  report: Awaited<ReturnType<typeof runOnce>>,
): Promise<Summary> {
  const listId = report.list?.id ?? -1;
  const logs = await withSource(w, (s) =>
    s.query(
      `select operation, record_key, email, user_id, status, error_code from ${s.dialect.table(s.stateSchema, "sync_logs")} where run_id = ${report.runId}`,
    ),
  );
  return {
    members: em.state
      .members(listId)
      .map((m) => `${m.email ?? ""}|${m.userId ?? ""}`)
      .sort(),
    status: report.status,
    succeeded: report.succeeded.subscribe + report.succeeded.unsubscribe,
    failed: report.failed.subscribe + report.failed.unsubscribe,
    byCode: report.failuresByCode as Record<string, number>,
    logs: logs
      .map((l) => [l.operation, l.record_key, l.email, l.user_id, l.status, l.error_code].join(" "))
      .sort(),
  };
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
      out.push(await summary(w, em, await runOnce(w, r)));
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

/** email, uid of the unsubscribe scenario: plain members (built), one needing TypeScript, one
 *  that Iterable forgets between the runs, and one that stays. */
const LEAVING: [string | null, string | null][] = [
  ...Array.from({ length: 10 }, (_, i): [string, string | null] => [
    `q${i}@example.com`,
    i % 3 === 0 ? null : `v${i}`,
  ]),
  ["zoë@exämple.com", "v-unicode"], // valid, non-ASCII: record by record
  ["gone@example.com", null], // forgotten before the second run: its unsubscribe fails
];
const STAYING: [string | null, string | null][] = [["keep@example.com", "v-keep"]];

/** Four runs: everyone subscribed; everyone but one removed, while Iterable answers every
 *  unsubscribe with a server error; the same model again (the unsubscribes retried); and once
 *  more (nothing left to send). */
async function unsubscribeScenario(dialect: DialectName): Promise<Summary[]> {
  const w = await createWarehouse(dialect);
  const em = await startEmulator({ port: 0, projectType: "hybrid", apiKey: KEY });
  try {
    const r = resolvedSync(w, em, "hybrid", "m", { apiKey: KEY, batchSize: 4 });
    const out: Summary[] = [];
    for (let round = 0; round < 4; round++) {
      await withSource(w, (s) =>
        writeTable(
          s,
          w.dataSchema,
          "m",
          ["email", "uid"],
          round === 0 ? [...LEAVING, ...STAYING] : STAYING,
        ),
      );
      if (round === 1) {
        em.state.forgetUser({ email: "gone@example.com" });
        em.faults.enqueue(
          { kind: "status", status: 500 },
          { path: "/api/lists/unsubscribe", times: 1000 },
        );
      }
      out.push(await summary(w, em, await runOnce(w, r)));
      em.faults.clear();
    }
    return out;
  } finally {
    await em.close();
    await w.cleanup();
  }
}

describe("unsubscribes built by the warehouse and sent record by record agree", () => {
  const results = new Map<DialectName, Summary[]>();
  const built = new Map<DialectName, number>();
  beforeAll(async () => {
    const spy = vi.spyOn(IterableClient.prototype, "unsubscribeBodies");
    for (const d of dialects) {
      spy.mockClear();
      results.set(d, await unsubscribeScenario(d));
      built.set(d, spy.mock.calls.length);
    }
    spy.mockRestore();
  }, 120_000);
  afterAll(() => results.clear());

  it("DuckDB sends the plain unsubscribes as built bodies, and the list, report and logs are right", () => {
    expect(built.get("duckdb")).toBeGreaterThan(0);
    const [first, failing, retry, last] = results.get("duckdb") ?? [];
    expect(first?.status).toBe("succeeded");
    expect(first?.members).toHaveLength(13);
    // every unsubscribe failed: the list keeps them, the snapshot too
    expect(failing?.status).toBe("completed_with_failures");
    expect(failing?.byCode).toEqual({ server_error: 12 });
    expect(failing?.members).toHaveLength(12); // the forgotten user left every list
    expect(failing?.logs.filter((l) => l.endsWith(" failed server_error"))).toHaveLength(12);
    // retried: the built and the recorded ones leave the list, the forgotten one fails for good
    expect(retry?.members).toEqual(["keep@example.com|v-keep"]);
    expect(retry?.logs.filter((l) => l.startsWith("unsubscribe"))).toHaveLength(12);
    expect(retry?.logs).toContain(
      "unsubscribe e:gone@example.com gone@example.com  failed forgotten_user",
    );
    expect(retry?.logs).toContain("unsubscribe u:v-unicode zoë@exämple.com v-unicode succeeded ");
    expect(retry?.logs).toContain("unsubscribe e:q0@example.com q0@example.com  succeeded ");
    expect(retry?.byCode).toEqual({ forgotten_user: 1 });
    // nothing left to send
    expect(last?.status).toBe("succeeded");
    expect(last?.logs).toEqual([]);
    expect(last?.members).toEqual(["keep@example.com|v-keep"]);
  });

  for (const d of dialects.filter((x) => x !== "duckdb")) {
    it(`${d} gives the same results record by record`, () => {
      expect(built.get(d)).toBe(0);
      expect(results.get(d)).toEqual(results.get("duckdb"));
    });
  }
});
