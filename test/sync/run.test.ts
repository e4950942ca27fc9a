/**
 * End to end at the library level: the real planner on a real warehouse, the real client over
 * HTTP against the emulator; assertions are on what the list holds afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ResolvedSync } from "../../src/config/index.js";
import { type Emulator, startEmulator } from "../../src/emulator/index.js";
import type { ProjectType } from "../../src/iterable/wire.js";
import type { Source } from "../../src/sources/source.js";
import { getMetadata, listFailures, listRuns } from "../../src/state/store.js";
import type { RunOptions, RunReport } from "../../src/sync/run.js";
import { resolvedSync } from "../support/config.js";
import { runOnce } from "../support/run.js";
import {
  availableDialects,
  createWarehouse,
  type TestWarehouse,
  withSource as withSourceOf,
  writeTable,
} from "../support/sources.js";

const dialects = await availableDialects();
const KEY = "test-server-key-0123456789";

type Row = [string | null, string | null];

function resolved(
  w: TestWarehouse,
  emulator: Emulator,
  projectType: ProjectType,
  table: string,
  extra = "",
): ResolvedSync {
  return resolvedSync(w, emulator, projectType, table, { apiKey: KEY, extra });
}

/** The identities the list must hold: the model's valid rows, as the planner identifies them. */
function memberKeys(emulator: Emulator, listId: number): string[] {
  return emulator.state
    .members(listId)
    .map((m) =>
      m.userId !== undefined && emulator.state.projectType !== "email"
        ? `u:${m.userId}`
        : `e:${m.email}`,
    )
    .sort();
}

describe.each(dialects)("sync runs on %s", (dialect) => {
  let w: TestWarehouse;
  let emulator: Emulator;

  beforeAll(async () => {
    w = await createWarehouse(dialect);
  });
  afterAll(async () => {
    await emulator?.close();
    await w?.cleanup();
  });

  const run = (r: ResolvedSync, opts: RunOptions = {}): Promise<RunReport> => runOnce(w, r, opts);

  async function model(table: string, cols: string[], rows: Row[] | string[][]) {
    const s = await w.open();
    try {
      await writeTable(s, w.dataSchema, table, cols, rows);
    } finally {
      await s.close();
    }
  }

  const withSource = <T>(fn: (s: Source) => Promise<T>): Promise<T> => withSourceOf(w, fn);

  it("email project: several rounds of changes keep the list equal to the model", async () => {
    emulator = await startEmulator({ port: 0, projectType: "email", apiKey: KEY });
    const r = resolved(w, emulator, "email", "e1");
    const rounds: string[][] = [
      ["a@example.com", "B@Example.com", " c@example.com ", "not-an-email", ""],
      ["a@example.com", "c@example.com", "d@example.com", "e@example.com"],
      ["d@example.com"],
      [],
      ["x@example.com", "y@example.com"],
    ];
    for (const [i, emails] of rounds.entries()) {
      await model(
        "e1",
        ["email"],
        emails.map((e) => [e]),
      );
      const report = await run(r);
      const listId = report.list?.id ?? -1;
      const expected = [
        ...new Set(
          emails.map((e) => e.trim().toLowerCase()).filter((e) => /^[a-z]@example\.com$/.test(e)),
        ),
      ]
        .map((e) => `e:${e}`)
        .sort();
      expect(memberKeys(emulator, listId), `round ${i}`).toEqual(expected);
      if (i === 0) {
        expect(report.status).toBe("completed_with_failures");
        expect(report.failuresByCode.invalid_email).toBe(1);
        expect(report.invalidRows).toBe(2); // the empty email (no identity) and the invalid one
        expect(report.firstRun).toBe(true);
      } else {
        expect(report.status).toBe("succeeded");
      }
    }
    expect(emulator.stats.channelUnsubscribe.length).toBeGreaterThan(0);
    expect(emulator.stats.channelUnsubscribe.every((v) => v === false)).toBe(true);
    // the list was created once and found again by its remembered id afterwards
    expect(emulator.state.lists().filter((l) => l.name === "list e1")).toHaveLength(1);
    const runs = await withSource((s) => listRuns(s, "s", 10));
    expect(runs.map((x) => x.status)).toEqual([
      "succeeded",
      "succeeded",
      "succeeded",
      "succeeded",
      "completed_with_failures",
    ]);
    await emulator.close();
  });

  it("hybrid project: identity changes, gained userIds, invalid userIds", async () => {
    emulator = await startEmulator({ port: 0, projectType: "hybrid", apiKey: KEY });
    const r = resolved(w, emulator, "hybrid", "h1");
    const rounds: Row[][] = [
      [
        ["p@example.com", null],
        ["q@example.com", "q1"],
        ["r@example.com", " padded"],
      ],
      [
        ["p@example.com", "p1"],
        ["q2@example.com", "q1"],
        ["r@example.com", " padded"],
      ],
      [
        ["p@example.com", "p1"],
        ["s@example.com", "s1"],
      ],
    ];
    const expected = [
      ["e:p@example.com", "e:r@example.com", "u:q1"],
      ["e:r@example.com", "u:p1", "u:q1"],
      ["u:p1", "u:s1"],
    ];
    for (const [i, rows] of rounds.entries()) {
      await model("h1", ["email", "uid"], rows);
      const report = await run(r);
      expect(memberKeys(emulator, report.list?.id ?? -1), `round ${i}`).toEqual(expected[i]);
      if (i === 0) expect(report.warnings).toBe(1);
      if (i === 1) {
        // p gained a userId: its email unsubscribe is not sent (Iterable matches both to one user)
        expect(report.planned.skippedUnsubscribe).toBe(1);
        expect(
          emulator.state.members(report.list?.id ?? -1).find((m) => m.userId === "q1")?.email,
        ).toBe("q2@example.com");
      }
    }
    await emulator.close();
  });

  it("failed subscribe and failed unsubscribe are retried by the next run; forgotten users are not", async () => {
    emulator = await startEmulator({ port: 0, projectType: "email", apiKey: KEY });
    const r = resolved(w, emulator, "email", "f1");
    await model("f1", ["email"], [["a@example.com"], ["b@example.com"], ["gone@example.com"]]);
    emulator.state.forgetUser({ email: "gone@example.com" });
    emulator.faults.enqueue(
      { kind: "status", status: 500, body: "<html>oops</html>", contentType: "text/html" },
      { path: "/api/lists/subscribe", times: 100 },
    );
    const first = await run(r);
    const listId = first.list?.id ?? -1;
    expect(first.status).toBe("completed_with_failures");
    expect(first.failuresByCode.server_error).toBe(3);
    expect(memberKeys(emulator, listId)).toEqual([]);
    emulator.faults.clear();

    const second = await run(r);
    expect(second.failuresByCode).toEqual({ forgotten_user: 1 });
    expect(memberKeys(emulator, listId)).toEqual(["e:a@example.com", "e:b@example.com"]);
    const failures = await withSource((s) => listFailures(s, "s", { runId: second.runId ?? 0 }));
    expect(failures.map((f) => `${f.operation}|${f.email}|${f.errorCode}`)).toEqual([
      "subscribe|gone@example.com|forgotten_user",
    ]);

    // b removed; its unsubscribe fails once, then succeeds on the next run
    await model("f1", ["email"], [["a@example.com"], ["gone@example.com"]]);
    emulator.faults.enqueue(
      { kind: "status", status: 503 },
      { path: "/api/lists/unsubscribe", times: 100 },
    );
    const third = await run(r);
    expect(third.failed.unsubscribe).toBe(1);
    expect(third.planned.subscribe).toBe(0); // the forgotten user is not retried
    expect(memberKeys(emulator, listId)).toEqual(["e:a@example.com", "e:b@example.com"]);
    emulator.faults.clear();
    const fourth = await run(r);
    expect(fourth.succeeded.unsubscribe).toBe(1);
    expect(memberKeys(emulator, listId)).toEqual(["e:a@example.com"]);
    await emulator.close();
  });

  it("retryFailedRecords: false commits failed records as if synced", async () => {
    emulator = await startEmulator({ port: 0, projectType: "email", apiKey: KEY });
    const r = resolved(
      w,
      emulator,
      "email",
      "n1",
      "    observability: { retryFailedRecords: false }",
    );
    await model("n1", ["email"], [["a@example.com"]]);
    emulator.faults.enqueue(
      { kind: "status", status: 500 },
      { path: "/api/lists/subscribe", times: 100 },
    );
    const first = await run(r);
    expect(first.failed.subscribe).toBe(1);
    emulator.faults.clear();
    const second = await run(r);
    expect(second.planned.subscribe).toBe(0);
    expect(memberKeys(emulator, first.list?.id ?? -1)).toEqual([]);
    await emulator.close();
  });

  it("userId project with updateExistingUsersOnly: unknown users fail as user_not_found and are retried", async () => {
    emulator = await startEmulator({ port: 0, projectType: "userId", apiKey: KEY });
    const r = resolved(w, emulator, "userId", "u1", "    updateExistingUsersOnly: true");
    emulator.state.addUser({ userId: "known" });
    await model("u1", ["uid"], [["known"], ["unknown"]]);
    const first = await run(r);
    expect(first.failuresByCode).toEqual({ user_not_found: 1 });
    expect(memberKeys(emulator, first.list?.id ?? -1)).toEqual(["u:known"]);
    emulator.state.addUser({ userId: "unknown" });
    const second = await run(r);
    expect(second.status).toBe("succeeded");
    expect(memberKeys(emulator, first.list?.id ?? -1)).toEqual(["u:known", "u:unknown"]);
    await emulator.close();
  });

  it("a bad key fails the run, changes no snapshot and never prints the key", async () => {
    emulator = await startEmulator({
      port: 0,
      projectType: "email",
      apiKey: "another-key-entirely",
    });
    const r = resolved(w, emulator, "email", "k1");
    await model("k1", ["email"], [["a@example.com"]]);
    const report = await run(r);
    expect(report.status).toBe("failed");
    expect(report.error?.code).toBe("auth_failed");
    expect(JSON.stringify(report)).not.toContain(KEY);
    expect(await withSource((s) => getMetadata(s, "s"))).toMatchObject({
      snapshotTable: expect.anything(),
    });
    await emulator.close();
  });

  it("a list deleted in Iterable between runs is created again and filled (create mode)", async () => {
    emulator = await startEmulator({ port: 0, projectType: "email", apiKey: KEY });
    const r = resolved(w, emulator, "email", "d1");
    await model("d1", ["email"], [["a@example.com"], ["b@example.com"]]);
    const first = await run(r);
    emulator.state.deleteList(first.list?.id ?? -1);
    const second = await run(r);
    expect(second.list?.id).not.toBe(first.list?.id);
    expect(second.firstRun).toBe(true);
    expect(memberKeys(emulator, second.list?.id ?? -1)).toEqual([
      "e:a@example.com",
      "e:b@example.com",
    ]);
    await emulator.close();
  });

  it("a list id that does not exist fails the run with a clear error", async () => {
    emulator = await startEmulator({ port: 0, projectType: "email", apiKey: KEY });
    const base = resolved(w, emulator, "email", "d2");
    const r: ResolvedSync = { ...base, sync: { ...base.sync, list: { id: 424242 } } };
    await model("d2", ["email"], [["a@example.com"]]);
    const report = await run(r);
    expect(report.status).toBe("failed");
    expect(report.error?.code).toBe("list_not_found");
    expect(report.error?.message).toContain("list 424242 does not exist");
    await emulator.close();
  });

  it("cancellation stops sending, commits what was confirmed, and the next run completes the list", async () => {
    emulator = await startEmulator({ port: 0, projectType: "email", apiKey: KEY, latencyMs: 20 });
    const r = resolved(w, emulator, "email", "c1");
    await model(
      "c1",
      ["email"],
      Array.from({ length: 4000 }, (_, i) => [`user${i}@example.com`]),
    );
    const controller = new AbortController();
    const cancelled = await run(r, {
      signal: controller.signal,
      onProgress: (p) => {
        if (p.phase === "subscribe" && p.done >= 1000) controller.abort();
      },
    });
    expect(cancelled.status).toBe("cancelled");
    const listId = cancelled.list?.id ?? -1;
    const landed = memberKeys(emulator, listId).length;
    expect(landed).toBeGreaterThan(0);
    expect(landed).toBeLessThan(4000);
    const finished = await run(r);
    expect(finished.status).toBe("succeeded");
    // what Iterable confirmed before the stop was committed, so only the rest is sent again
    expect(finished.planned.subscribe).toBeLessThanOrEqual(4000 - cancelled.succeeded.subscribe);
    expect(cancelled.succeeded.subscribe).toBeGreaterThan(0);
    expect(memberKeys(emulator, listId)).toHaveLength(4000);
    await emulator.close();
  });
});
