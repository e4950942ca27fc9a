/** Review: the API key never reaches a report, a sync log or the CLI output. */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type Emulator, startEmulator } from "../../../src/emulator/index.js";
import { listFailures } from "../../../src/state/store.js";
import { runOnce } from "../../support/run.js";
import {
  availableDialects,
  createWarehouse,
  type TestWarehouse,
  withSource,
} from "../../support/sources.js";
import { KEY, model, resolvedSync } from "./helpers.js";

const dialects = await availableDialects();

describe.each(dialects)("secrets on %s", (dialect) => {
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

  it("a 200 answer that is not Iterable's JSON (a proxy echoing the request) does not put the key in logs or the report", async () => {
    emulator = await startEmulator({ port: 0, projectType: "email", apiKey: KEY });
    const r = resolvedSync(w, emulator, "email", "sk1", { syncName: "sk1" });
    await model(w, "sk1", ["email"], [["a@example.com"]]);
    emulator.faults.enqueue(
      {
        kind: "status",
        status: 200,
        body: `<html><body>Request headers: Api-Key: ${KEY}</body></html>`,
        contentType: "text/html",
      },
      { path: "/api/lists/subscribe" },
    );
    const report = await runOnce(w, r);
    expect(report.failed.subscribe).toBe(1);
    const logs = await withSource(w, (s) => listFailures(s, "sk1"));
    expect(logs).toHaveLength(1);
    expect.soft(JSON.stringify(report)).not.toContain(KEY);
    expect(JSON.stringify(logs)).not.toContain(KEY);
  });
});
