/**
 * Work done ahead while sending (src/sources/speculate.ts): the next snapshot and the sync logs of
 * built batches, each written in a transaction of its own and kept only when the outcome proves it
 * right. A DuckDB run long enough to open the queue must leave the same list, logs and snapshot as
 * the regular way, every record logged exactly once, also when a batch fails or the run is
 * cancelled; and DuckDB's thread and memory settings, lowered while the queue is open, are
 * restored.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ResolvedSync } from "../../src/config/index.js";
import { type Emulator, startEmulator } from "../../src/emulator/index.js";
import { IterableClient } from "../../src/iterable/client.js";
import { sizeBytes } from "../../src/sources/duckdb.js";
import type { Source } from "../../src/sources/source.js";
import { getMetadata } from "../../src/state/store.js";
import { type RunOptions, type RunReport, reportOf, runSync } from "../../src/sync/run.js";
import { resolvedSync } from "../support/config.js";
import { createWarehouse, type TestWarehouse, writeTable } from "../support/sources.js";

const KEY = "test-server-key-ahead-42";
const ROWS = 600;
// 2 subscribers per request: 300 batches, more than the first segments (4, then 100 per query)
const BATCH = 2;

interface Seen {
  transactions: number;
  /** narrow() calls and their releases */
  narrowed: number;
  released: number;
}

describe("work done ahead while sending (DuckDB)", () => {
  let w: TestWarehouse;
  let em: Emulator;
  let keeper: Source;
  let r: ResolvedSync;

  beforeEach(async () => {
    w = await createWarehouse("duckdb");
    em = await startEmulator({ port: 0, projectType: "hybrid", apiKey: KEY });
    // held open across the runs: they share its DuckDB instance, and so its settings
    keeper = await w.open();
    const rows = Array.from({ length: ROWS }, (_, i) => [`p${i}@example.com`, `u${i}`]);
    await writeTable(keeper, w.dataSchema, "m", ["email", "uid"], rows);
    r = resolvedSync(w, em, "hybrid", "m", { apiKey: KEY, batchSize: BATCH });
  });
  afterEach(async () => {
    await keeper?.close();
    await em?.close();
    await w?.cleanup();
  });

  /** One run on a source that records its transactions and thread settings. */
  async function run(opts: RunOptions = {}): Promise<{ report: RunReport; seen: Seen }> {
    const source = await w.open();
    const seen: Seen = { transactions: 0, narrowed: 0, released: 0 };
    const watched = new Proxy(source, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (typeof value !== "function") return value;
        if (prop === "transaction") {
          return (...args: unknown[]) => {
            seen.transactions++;
            return value.apply(target, args);
          };
        }
        if (prop === "narrow") {
          return async () => {
            seen.narrowed++;
            const release = await value.call(target);
            return async () => {
              seen.released++;
              await release();
            };
          };
        }
        return value.bind(target);
      },
    });
    const api = IterableClient.fromDestination(r.destination, {
      retry: { baseMs: 1, maxMs: 5, listNotFoundRetryMs: 50 },
    });
    try {
      return { report: await runSync(r, { api, source: watched }, opts), seen };
    } catch (err) {
      const report = reportOf(err);
      if (report) return { report, seen };
      throw err;
    } finally {
      await api.close();
      await source.close();
    }
  }

  async function settings(): Promise<{ threads: number; memory: string }> {
    const [row] = await keeper.query(
      "select current_setting('threads')::bigint as n, current_setting('memory_limit') as m",
    );
    return { threads: Number(row?.n), memory: String(row?.m) };
  }

  async function logsOf(runId: number | null) {
    return keeper.query<{ record_key: string; status: string; error_code: string | null }>(
      `select record_key, status, error_code from ${keeper.dialect.table(keeper.stateSchema, "sync_logs")} where run_id = ${runId}`,
    );
  }

  async function snapshotRows(): Promise<number> {
    const meta = await getMetadata(keeper, "s");
    const [row] = await keeper.query(
      `select count(*) as n from ${keeper.dialect.table(keeper.stateSchema, meta?.snapshotTable ?? "")}`,
    );
    return Number(row?.n);
  }

  function distinctKeys(logs: { record_key: string }[]): number {
    return new Set(logs.map((l) => l.record_key)).size;
  }

  it("every record confirmed: the logs and the snapshot written ahead are kept", async () => {
    const before = await settings();
    const { report, seen } = await run();
    expect(report.status).toBe("succeeded");
    expect(report.succeeded.subscribe).toBe(ROWS);
    // the queue was opened: the instance narrowed, then restored; both works in transactions
    expect(seen).toMatchObject({ narrowed: 1, released: 1 });
    expect(seen.transactions).toBeGreaterThanOrEqual(2);
    expect(await settings()).toEqual(before);
    expect(em.state.members(report.list?.id ?? -1)).toHaveLength(ROWS);
    const logs = await logsOf(report.runId);
    expect(logs).toHaveLength(ROWS);
    expect(distinctKeys(logs)).toBe(ROWS);
    expect(logs.every((l) => l.status === "succeeded")).toBe(true);
    expect(await snapshotRows()).toBe(ROWS);
    const next = (await run()).report;
    expect(next.planned).toMatchObject({ subscribe: 0, unsubscribe: 0 });
  });

  it("two syncs on one file at once: both narrow the shared instance, both keep their work ahead", async () => {
    const before = await settings();
    const r2 = resolvedSync(w, em, "hybrid", "m", {
      apiKey: KEY,
      batchSize: BATCH,
      syncName: "t",
    });
    const runOf = async (sync: ResolvedSync) => {
      const source = await w.open();
      const api = IterableClient.fromDestination(sync.destination, {
        retry: { baseMs: 1, maxMs: 5, listNotFoundRetryMs: 50 },
      });
      try {
        return await runSync(sync, { api, source });
      } finally {
        await api.close();
        await source.close();
      }
    };
    const [a, b] = await Promise.all([runOf(r), runOf(r2)]);
    for (const report of [a, b]) {
      expect(report.status).toBe("succeeded");
      const logs = await logsOf(report.runId);
      expect(logs.length).toBeGreaterThanOrEqual(ROWS);
    }
    const [logs] = await keeper.query(
      `select count(*) as n, count(distinct sync_name || record_key) as k from ${keeper.dialect.table(keeper.stateSchema, "sync_logs")}`,
    );
    expect(Number(logs?.n)).toBe(2 * ROWS);
    expect(Number(logs?.k)).toBe(2 * ROWS);
    expect(await snapshotRows()).toBe(ROWS);
    expect(await settings()).toEqual(before);
  });

  it("a batch with a failure: the work ahead is thrown away and done the regular way", async () => {
    // u321 is unknown to Iterable: user_not_found, retried by the next run (not in the snapshot)
    for (let i = 0; i < ROWS; i++) if (i !== 321) em.state.addUser({ userId: `u${i}` });
    r = resolvedSync(w, em, "hybrid", "m", {
      apiKey: KEY,
      batchSize: BATCH,
      extra: "    updateExistingUsersOnly: true",
    });
    const before = await settings();
    const { report, seen } = await run();
    expect(seen).toMatchObject({ narrowed: 1, released: 1 });
    expect(await settings()).toEqual(before);
    expect(report.status).toBe("completed_with_failures");
    expect(report.failuresByCode).toEqual({ user_not_found: 1 });
    const logs = await logsOf(report.runId);
    expect(logs).toHaveLength(ROWS);
    expect(distinctKeys(logs)).toBe(ROWS);
    expect(logs.filter((l) => l.status === "failed")).toEqual([
      { record_key: "u:u321", status: "failed", error_code: "user_not_found" },
    ]);
    expect(await snapshotRows()).toBe(ROWS - 1);
    em.state.addUser({ userId: "u321" });
    const next = (await run()).report;
    expect(next.planned.subscribe).toBe(1);
    expect(em.state.members(next.list?.id ?? -1)).toHaveLength(ROWS);
  });

  it("a cancelled run keeps only what was confirmed, logged once", async () => {
    const controller = new AbortController();
    const before = await settings();
    const { report } = await run({
      signal: controller.signal,
      onProgress: (p) => {
        if (p.phase === "subscribe" && p.done >= 250) controller.abort();
      },
    });
    expect(report.status).toBe("cancelled");
    expect(await settings()).toEqual(before);
    const sent = report.succeeded.subscribe;
    expect(sent).toBeGreaterThanOrEqual(250);
    expect(sent).toBeLessThan(ROWS);
    const logs = await logsOf(report.runId);
    expect(logs).toHaveLength(sent);
    expect(distinctKeys(logs)).toBe(sent);
    expect(await snapshotRows()).toBe(sent);
    const next = (await run()).report;
    expect(next.planned.subscribe).toBe(ROWS - sent);
    expect(next.status).toBe("succeeded");
    expect(em.state.members(next.list?.id ?? -1)).toHaveLength(ROWS);
  });
});

describe("DuckDB narrow()", () => {
  it("keeps a third of the memory limit and takes a thread while held; the last release restores the configured settings", async () => {
    expect(sizeBytes("183.1 MiB")).toBeCloseTo(183.1 * 2 ** 20);
    expect(sizeBytes("192MB")).toBe(192e6);
    expect(sizeBytes("lots")).toBeNull();
    const w = await createWarehouse("duckdb");
    const a = await w.open();
    const b = await w.open();
    const settings = async () => {
      const [row] = await a.query(
        "select current_setting('threads')::bigint as n, current_setting('memory_limit') as m",
      );
      return { threads: Number(row?.n), bytes: sizeBytes(String(row?.m)) ?? 0 };
    };
    try {
      await a.exec("SET threads = 3");
      await a.exec("SET memory_limit = '192MB'");
      const before = await settings();
      const releaseA = await a.narrow?.();
      const releaseB = await b.narrow?.();
      const narrowed = await settings();
      expect(narrowed.threads).toBe(2);
      expect(narrowed.bytes / before.bytes).toBeCloseTo(1 / 3, 2);
      await releaseA?.();
      expect(await settings()).toEqual(narrowed);
      await releaseB?.();
      await releaseB?.();
      expect(await settings()).toEqual(before);
    } finally {
      await a.close();
      await b.close();
      await w.cleanup();
    }
  });
});
