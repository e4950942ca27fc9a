/** Run bookkeeping in the warehouse: locks, retention of logs and snapshots, failed runs. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ResolvedSync } from "../../src/config/index.js";
import { type Emulator, startEmulator } from "../../src/emulator/index.js";
import { LockedError } from "../../src/errors.js";
import { tablePrefix } from "../../src/planner/names.js";
import { openSource } from "../../src/sources/index.js";
import type { Source } from "../../src/sources/source.js";
import { ensureState, listFailures, listRuns } from "../../src/state/store.js";
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
const KEY = "state-test-key-0123456789";

describe.each(dialects)("run bookkeeping on %s", (dialect) => {
  let w: TestWarehouse;
  let emulator: Emulator;

  beforeAll(async () => {
    w = await createWarehouse(dialect);
    emulator = await startEmulator({ port: 0, projectType: "email", apiKey: KEY });
  });
  afterAll(async () => {
    await emulator?.close();
    await w?.cleanup();
  });

  const resolved = (table: string, observability = "", syncName = "s"): ResolvedSync =>
    resolvedSync(w, emulator, "email", table, {
      apiKey: KEY,
      batchSize: 100,
      syncName,
      extra: `    ${observability}`,
    });

  const withSource = <T>(fn: (s: Source) => Promise<T>): Promise<T> => withSourceOf(w, fn);

  const run = (r: ResolvedSync, opts: RunOptions = {}): Promise<RunReport> => runOnce(w, r, opts);

  const emails = (n: number, tag: string) =>
    Array.from({ length: n }, (_, i) => [`${tag}${i}@example.com`]);

  it("keeps the newest snapshotRetention snapshots and drops the work tables", async () => {
    const r = resolved("r1", "observability: { snapshotRetention: 2 }", "ret");
    for (let i = 0; i < 4; i++) {
      await withSource((s) => writeTable(s, w.dataSchema, "r1", ["email"], emails(3 + i, "r")));
      expect((await run(r)).status).toBe("succeeded");
    }
    const tables = await withSource((s) => s.listTables(s.stateSchema, tablePrefix("ret")));
    expect(tables.map((t) => t.replace(tablePrefix("ret"), "")).sort()).toEqual([
      "snap_3",
      "snap_4",
    ]);
  });

  it("deletes sync logs older than syncLogRetentionDays, and writes none with retainSyncLogs false", async () => {
    const r = resolved("r2", "observability: { syncLogRetentionDays: 1 }", "logs");
    await withSource((s) => writeTable(s, w.dataSchema, "r2", ["email"], emails(2, "l")));
    await run(r);
    const count = (s: Source) =>
      s
        .query(
          `select count(*) as n from ${s.dialect.table(s.stateSchema, "sync_logs")} where sync_name = 'logs'`,
        )
        .then((x) => Number(x[0]?.n));
    expect(await withSource(count)).toBe(2);
    // age the existing rows by two days, then run again
    await withSource(async (s) => {
      const d = s.dialect;
      const aged =
        d.name === "mysql"
          ? "utc_timestamp(3) - interval 2 day"
          : d.name === "postgres"
            ? "now() - interval '2 days'"
            : "current_timestamp - interval 2 day";
      await s.exec(
        `update ${d.table(s.stateSchema, "sync_logs")} set logged_at = ${aged} where sync_name = 'logs'`,
      );
    });
    await withSource((s) => writeTable(s, w.dataSchema, "r2", ["email"], emails(3, "l")));
    await run(r);
    expect(await withSource(count)).toBe(1); // only the new subscribe of this run

    const off = resolved("r2b", "observability: { retainSyncLogs: false }", "nologs");
    await withSource((s) =>
      writeTable(s, w.dataSchema, "r2b", ["email"], [...emails(2, "n"), ["bad"]]),
    );
    const report = await run(off);
    expect(report.status).toBe("completed_with_failures");
    const n = await withSource((s) =>
      s
        .query(
          `select count(*) as n from ${s.dialect.table(s.stateSchema, "sync_logs")} where sync_name = 'nologs'`,
        )
        .then((x) => Number(x[0]?.n)),
    );
    expect(n).toBe(0);
    const runs = await withSource((s) => listRuns(s, "nologs"));
    expect(runs[0]?.failuresByCode).toEqual({ invalid_email: 1 });
  });

  it("refuses a second run of the same sync while one is running", async () => {
    const slow = await startEmulator({ port: 0, projectType: "email", apiKey: KEY, latencyMs: 30 });
    try {
      const base = resolved("r3", "", "lock");
      const r: ResolvedSync = { ...base, destination: { ...base.destination, baseUrl: slow.url } };
      await withSource((s) => writeTable(s, w.dataSchema, "r3", ["email"], emails(500, "k")));
      let second: Promise<unknown> | null = null;
      const first = run(r, {
        onProgress: (p) => {
          if (p.phase === "subscribe" && !second) second = run(r).catch((e: unknown) => e);
        },
      });
      const a = await first;
      expect(second).not.toBeNull();
      const b = await (second as unknown as Promise<unknown>);
      expect(a.status).toBe("succeeded");
      expect(b).toBeInstanceOf(LockedError);
      expect((b as Error).message).toMatch(/sync "lock" is already running/);
      // a refused run leaves no trace in the run history
      expect((await withSource((s) => listRuns(s, "lock"))).map((x) => x.status)).toEqual([
        "succeeded",
      ]);
    } finally {
      await slow.close();
    }
  });

  it("a model that fails makes a failed run with the reason, and the next good run succeeds", async () => {
    await withSource((s) => writeTable(s, w.dataSchema, "r4", ["email"], emails(2, "m")));
    const good = resolved("r4", "", "model");
    const bad: ResolvedSync = {
      ...good,
      sync: { ...good.sync, table: undefined, model: "select email from no_such_table_xyz" },
    };
    const failed = await run(bad);
    expect(failed.status).toBe("failed");
    expect(failed.error?.message).toMatch(/sync "model": the model does not run/);
    expect((await run(good)).status).toBe("succeeded");
  });

  it("several runs creating the state schema at once all succeed", async () => {
    const schema = `as_state_race_${Date.now().toString(36)}`;
    // biome-ignore lint/suspicious/noExplicitAny: the test warehouse's config is a valid source config
    const config = { ...w.config, stateSchema: schema } as any;
    const sources = await Promise.all([1, 2, 3, 4].map(() => openSource(config)));
    try {
      await Promise.all(sources.map((s) => ensureState(s)));
      const tables = await sources[0]?.listTables(schema);
      expect(tables).toEqual(
        expect.arrayContaining(["sync_logs", "sync_metadata", "sync_runs", "sync_snapshots"]),
      );
    } finally {
      const s = sources[0];
      if (s) {
        const drop =
          s.dialect.name === "mysql" ? "drop database if exists" : "drop schema if exists";
        await s.exec(
          `${drop} ${s.dialect.quoteIdent(schema)}${s.dialect.name === "mysql" ? "" : " cascade"}`,
        );
      }
      await Promise.all(sources.map((s) => s.close()));
    }
  });
});

describe("DuckDB sync_logs column types", () => {
  it("a new state schema types operation and status as enums, which read and filter as text", async () => {
    const w = await createWarehouse("duckdb");
    try {
      await withSourceOf(w, async (s) => {
        await ensureState(s);
        const logs = s.dialect.table(s.stateSchema, "sync_logs");
        const types = await s.query<{ data_type: string }>(
          "select data_type from information_schema.columns where table_schema = $1 and table_name = 'sync_logs' and column_name in ('operation', 'status') order by column_name",
          [s.stateSchema],
        );
        expect(types.map((t) => t.data_type)).toEqual([
          "ENUM('subscribe', 'unsubscribe')",
          "ENUM('succeeded', 'failed')",
        ]);
        await s.exec(
          `insert into ${logs} (sync_name, run_id, record_key, operation, status) values ('x', 1, 'e:a', 'unsubscribe', 'failed')`,
        );
        expect(
          await s.query(`select operation, status from ${logs} where status = 'failed'`),
        ).toEqual([{ operation: "unsubscribe", status: "failed" }]);
        await expect(
          s.exec(
            `insert into ${logs} (sync_name, run_id, operation, status) values ('x', 1, 'delete', 'failed')`,
          ),
        ).rejects.toThrow();
      });
    } finally {
      await w.cleanup();
    }
  });
});

describe("a DuckDB state schema made by an earlier version", () => {
  it("keeps its VARCHAR log columns, and runs log into them and read them back", async () => {
    const w = await createWarehouse("duckdb");
    const emulator = await startEmulator({ port: 0, projectType: "email", apiKey: KEY });
    try {
      // sync_logs as versions before the enum columns created it
      await withSourceOf(w, async (s) => {
        await s.ensureSchema(s.stateSchema);
        await s.exec(
          `create table ${s.dialect.table(s.stateSchema, "sync_logs")} (sync_name varchar not null, run_id integer not null, ` +
            "record_key varchar, operation varchar(12) not null, email varchar, user_id varchar, status varchar(12) not null, " +
            "error_code varchar(40), error_message varchar, logged_at timestamptz)",
        );
        await writeTable(s, w.dataSchema, "old", ["email"], [["a@example.com"], ["bad"]]);
      });
      const r = resolvedSync(w, emulator, "email", "old", {
        apiKey: KEY,
        batchSize: 100,
        syncName: "old",
      });
      expect((await runOnce(w, r)).status).toBe("completed_with_failures");
      await withSourceOf(w, async (s) => {
        const logs = `${s.dialect.table(s.stateSchema, "sync_logs")}`;
        const types = await s.query<{ column_name: string; data_type: string }>(
          "select column_name, data_type from information_schema.columns where table_schema = $1 and table_name = 'sync_logs' and column_name in ('operation', 'status') order by column_name",
          [s.stateSchema],
        );
        expect(types.map((t) => t.data_type)).toEqual(["VARCHAR", "VARCHAR"]);
        const rows = await s.query(
          `select operation, status, email, error_code from ${logs} order by email`,
        );
        expect(rows).toEqual([
          { operation: "subscribe", status: "succeeded", email: "a@example.com", error_code: null },
          { operation: "subscribe", status: "failed", email: "bad", error_code: "invalid_email" },
        ]);
        const failures = await listFailures(s, "old", {});
        expect(failures.map((f) => [f.operation, f.email, f.errorCode])).toEqual([
          ["subscribe", "bad", "invalid_email"],
        ]);
      });
    } finally {
      await emulator.close();
      await w.cleanup();
    }
  });
});
