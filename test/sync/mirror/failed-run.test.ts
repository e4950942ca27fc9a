/**
 * Review: what a run that fails part-way (after Iterable applied some of its requests) leaves for
 * the next run, and how a failure after the commit point is reported.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type Emulator, startEmulator } from "../../../src/emulator/index.js";
import { IterableClient } from "../../../src/iterable/client.js";
import type { Source } from "../../../src/sources/source.js";
import { getMetadata } from "../../../src/state/store.js";
import { type RunReport, runSync } from "../../../src/sync/run.js";
import { runOnce } from "../../support/run.js";
import {
  availableDialects,
  createWarehouse,
  type TestWarehouse,
  withSource,
} from "../../support/sources.js";
import { KEY, model, people, resolvedSync } from "./helpers.js";

const dialects = await availableDialects();

describe.each(dialects)("runs that fail part-way on %s", (dialect) => {
  let w: TestWarehouse;
  let emulator: Emulator | undefined;

  beforeAll(async () => {
    w = await createWarehouse(dialect);
  });
  afterEach(async () => {
    await emulator?.close();
    emulator = undefined;
  });
  afterAll(async () => {
    await w?.cleanup();
  });

  it("unsubscribes applied by a run that then failed are not forgotten when the row comes back", async () => {
    emulator = await startEmulator({ port: 0, projectType: "email", apiKey: KEY });
    const r = resolvedSync(w, emulator, "email", "fr1", { syncName: "fr1" });
    await model(w, "fr1", ["email"], [["a@example.com"], ["x@example.com"]]);
    const first = await runOnce(w, r);
    const listId = first.list?.id ?? -1;
    expect(people(emulator, listId)).toEqual(["|a@example.com", "|x@example.com"]);

    // x leaves, b joins; the unsubscribe of x lands, then the key is refused: the run fails
    await model(w, "fr1", ["email"], [["a@example.com"], ["b@example.com"]]);
    emulator.faults.enqueue(
      { kind: "status", status: 401, body: '{"code":"BadApiKey","msg":"Disabled API key"}' },
      { path: "/api/lists/subscribe" },
    );
    const second = await runOnce(w, r);
    expect(second.status).toBe("failed");
    expect(people(emulator, listId)).toEqual(["|a@example.com"]);

    // x is back in the audience before the next run
    await model(w, "fr1", ["email"], [["a@example.com"], ["x@example.com"]]);
    const third = await runOnce(w, r);
    expect(third.status).toBe("succeeded");
    expect(people(emulator, listId)).toEqual(["|a@example.com", "|x@example.com"]);
  });

  it("a run reported as failed has not moved the baseline (failure after the commit point)", async () => {
    emulator = await startEmulator({ port: 0, projectType: "email", apiKey: KEY });
    const r = resolvedSync(w, emulator, "email", "fr2", { syncName: "fr2" });
    await model(w, "fr2", ["email"], [["a@example.com"]]);
    await runOnce(w, r);
    await model(w, "fr2", ["email"], [["a@example.com"], ["b@example.com"]]);

    // the warehouse drops the connection during retention, after the snapshot was committed
    const real = await w.open();
    const flaky = new Proxy(real, {
      get(target, prop, receiver) {
        if (prop === "exec") {
          return async (sql: string, params?: unknown[]) => {
            if (/^delete from .*sync_logs.* logged_at </i.test(sql)) {
              throw new Error("connection to the warehouse lost");
            }
            return await target.exec(sql, params);
          };
        }
        const v = Reflect.get(target, prop, receiver);
        return typeof v === "function" ? v.bind(target) : v;
      },
    }) as Source;
    const api = IterableClient.fromDestination(r.destination, {
      retry: { baseMs: 1, maxMs: 5, listNotFoundRetryMs: 50 },
    });
    let report: RunReport;
    try {
      report = await runSync(r, { api, source: flaky });
    } catch (err) {
      report = (err as { report: RunReport }).report;
    } finally {
      await api.close();
      await real.close();
    }
    const meta = await withSource(w, (s) => getMetadata(s, "fr2"));
    // docs/how-it-works.md: `failed` means "Nothing was committed; the previous snapshot stands"
    if (report.status === "failed") expect(meta?.snapshotRunId).not.toBe(report.runId);
    else expect(report.status).toBe("succeeded");
  });
});
