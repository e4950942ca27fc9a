/** Review: cancellation during the unsubscribe phase, and a full resync after failed unsubscribes. */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type Emulator, startEmulator } from "../../../src/emulator/index.js";
import { runOnce } from "../../support/run.js";
import { availableDialects, createWarehouse, type TestWarehouse } from "../../support/sources.js";
import { KEY, model, people, resolvedSync } from "./helpers.js";

const dialects = await availableDialects();

describe.each(dialects)("cancel and resync on %s", (dialect) => {
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

  it("a run cancelled while unsubscribing commits what landed; the next run finishes both phases", async () => {
    emulator = await startEmulator({ port: 0, projectType: "hybrid", apiKey: KEY, latencyMs: 10 });
    const r = resolvedSync(w, emulator, "hybrid", "cx1", { syncName: "cx1", batchSize: 100 });
    const old = Array.from({ length: 1500 }, (_, i) => [`old${i}@example.com`, `o${i}`]);
    await model(w, "cx1", ["email", "uid"], old);
    const first = await runOnce(w, r);
    const listId = first.list?.id ?? -1;
    expect(people(emulator, listId)).toHaveLength(1500);

    // half of the old rows gain... lose their userId (same person), the rest leave; new rows join
    const next = [
      ...Array.from({ length: 300 }, (_, i) => [`old${i}@example.com`, null]),
      ...Array.from({ length: 500 }, (_, i) => [`new${i}@example.com`, `n${i}`]),
    ];
    await model(w, "cx1", ["email", "uid"], next);
    const controller = new AbortController();
    const cancelled = await runOnce(w, r, {
      signal: controller.signal,
      onProgress: (p) => {
        if (p.phase === "unsubscribe" && p.done >= 300) controller.abort();
      },
    });
    expect(cancelled.status).toBe("cancelled");
    expect(cancelled.succeeded.subscribe).toBe(0);

    const done = await runOnce(w, r);
    expect(done.status).toBe("succeeded");
    const expected = [
      ...Array.from({ length: 300 }, (_, i) => `o${i}|old${i}@example.com`),
      ...Array.from({ length: 500 }, (_, i) => `n${i}|new${i}@example.com`),
    ].sort();
    expect(people(emulator, listId)).toEqual(expected);
  });

  it("a failed unsubscribe is still retried after a full resync", async () => {
    emulator = await startEmulator({ port: 0, projectType: "email", apiKey: KEY });
    const r = resolvedSync(w, emulator, "email", "cx2", { syncName: "cx2" });
    await model(w, "cx2", ["email"], [["a@example.com"], ["x@example.com"]]);
    const first = await runOnce(w, r);
    const listId = first.list?.id ?? -1;

    await model(w, "cx2", ["email"], [["a@example.com"]]);
    emulator.faults.enqueue(
      { kind: "status", status: 503 },
      { path: "/api/lists/unsubscribe", times: 100 },
    );
    const second = await runOnce(w, r);
    expect(second.failed.unsubscribe).toBe(1); // x stays in the snapshot, to be retried
    emulator.faults.clear();

    await runOnce(w, r, { fullResync: true });
    const fourth = await runOnce(w, r);
    expect(fourth.status).toBe("succeeded");
    expect(people(emulator, listId)).toEqual(["|a@example.com"]);
  });
});
