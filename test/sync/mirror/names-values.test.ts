/**
 * Review: hostile names (sync, table, columns) and unusual values travel through every SQL
 * statement of a run without breaking it or the mirror.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getSync, parseConfig } from "../../../src/config/index.js";
import { startEmulator } from "../../../src/emulator/index.js";
import { listRuns } from "../../../src/state/store.js";
import { runOnce } from "../../support/run.js";
import {
  availableDialects,
  createWarehouse,
  type TestWarehouse,
  withSource,
} from "../../support/sources.js";
import { KEY, model, people } from "./helpers.js";

const dialects = await availableDialects();

describe.each(dialects)("names and values on %s", (dialect) => {
  let w: TestWarehouse;

  beforeAll(async () => {
    w = await createWarehouse(dialect);
  });
  afterAll(async () => {
    await w?.cleanup();
  });

  it("a long mixed-case sync name; quotes in the table and column names; quotes and unicode in values", async () => {
    const emulator = await startEmulator({ port: 0, projectType: "hybrid", apiKey: KEY });
    try {
      const syncName = "Names--And_QUOTES-".repeat(2); // the config allows letters, digits, - and _
      const table = `we"ird'tab`;
      const cols = [`e"ma'il`, "user`id"];
      // table: only takes plain names; model: is how a quoted name is reached
      const quoted = await withSource(w, async (s) => s.dialect.table(w.dataSchema, table));
      const yaml = `
sources:
  wh: ${JSON.stringify(w.config)}
destinations:
  it: { type: iterable, apiKey: ${KEY}, projectType: hybrid, baseUrl: ${emulator.url} }
syncs:
  ${JSON.stringify(syncName)}:
    source: wh
    destination: it
    model: ${JSON.stringify(`select * from ${quoted}`)}
    list: { create: { name: "names" } }
    identifiers: { email: ${JSON.stringify(cols[0])}, userId: ${JSON.stringify(cols[1])} }
`;
      const r = getSync(parseConfig(yaml, { env: {} }), syncName);
      await model(w, table, cols, [
        ["o'brien@example.com", "u'1"],
        ["ÄNNE@exämple.com", null],
        ["zoë@example.com", 'u"2'],
      ]);
      const first = await runOnce(w, r);
      expect(first.error).toBeNull();
      expect(first.status).toBe("succeeded");
      const listId = first.list?.id ?? -1;
      expect(people(emulator, listId)).toEqual(
        ['u"2|zoë@example.com', "u'1|o'brien@example.com", "|änne@exämple.com"].sort(),
      );

      await model(w, table, cols, [["ÄNNE@EXÄMPLE.COM ", null]]);
      const second = await runOnce(w, r);
      expect(second.status).toBe("succeeded");
      expect(second.planned).toMatchObject({ subscribe: 0, unsubscribe: 2, unchanged: 1 });
      expect(people(emulator, listId)).toEqual(["|änne@exämple.com"]);
      const runs = await withSource(w, (s) => listRuns(s, syncName));
      expect(runs.map((x) => x.status)).toEqual(["succeeded", "succeeded"]);
    } finally {
      await emulator.close();
    }
  });
});
