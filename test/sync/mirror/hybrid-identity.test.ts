/**
 * Review: hybrid identity changes and the "unsubscribe superseded by a subscribe of the same
 * person" rule. Assertions are on the people the emulator's list holds after each run.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type Emulator, startEmulator } from "../../../src/emulator/index.js";
import { runOnce } from "../../support/run.js";
import { availableDialects, createWarehouse, type TestWarehouse } from "../../support/sources.js";
import { KEY, model, people, resolvedSync } from "./helpers.js";

const dialects = await availableDialects();

describe.each(dialects)("hybrid identity changes on %s", (dialect) => {
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

  async function hybrid(): Promise<Emulator> {
    emulator = await startEmulator({ port: 0, projectType: "hybrid", apiKey: KEY });
    return emulator;
  }

  it("rows with an empty-string userId: a removed row is unsubscribed although another row also has ''", async () => {
    const em = await hybrid();
    const r = resolvedSync(w, em, "hybrid", "hx1", { syncName: "hx1" });
    await model(w, "hx1", ["email", "uid"], [["a@example.com", ""]]);
    const first = await runOnce(w, r);
    const listId = first.list?.id ?? -1;
    expect(people(em, listId)).toEqual(["|a@example.com"]);

    // a@ leaves the audience, b@ joins; both rows carry '' (a common "no userId" value)
    await model(w, "hx1", ["email", "uid"], [["b@example.com", ""]]);
    const second = await runOnce(w, r);
    expect(second.status).toBe("succeeded");
    expect(people(em, listId)).toEqual(["|b@example.com"]);
  });

  it("rows sharing an invalid email: the removed userId is unsubscribed", async () => {
    const em = await hybrid();
    const r = resolvedSync(w, em, "hybrid", "hx2", { syncName: "hx2" });
    await model(w, "hx2", ["email", "uid"], [["not-an-email", "u1"]]);
    const first = await runOnce(w, r);
    const listId = first.list?.id ?? -1;
    expect(people(em, listId)).toEqual(["u1|"]);

    // u1 leaves, u2 joins; both carry the same unusable email (sent without it, as a warning)
    await model(w, "hx2", ["email", "uid"], [["not-an-email", "u2"]]);
    const second = await runOnce(w, r);
    expect(second.status).toBe("succeeded");
    expect(people(em, listId)).toEqual(["u2|"]);
  });

  it("an email moving to another userId: the old userId (another Iterable user) is unsubscribed", async () => {
    const em = await hybrid();
    const r = resolvedSync(w, em, "hybrid", "hx3", {
      syncName: "hx3",
      extra: "    observability: { retryFailedRecords: false }",
    });
    await model(w, "hx3", ["email", "uid"], [["a@example.com", "u1"]]);
    const first = await runOnce(w, r);
    const listId = first.list?.id ?? -1;
    expect(people(em, listId)).toEqual(["u1|a@example.com"]);

    // the email now belongs to u2 in the warehouse; u1 is no longer in the audience
    await model(w, "hx3", ["email", "uid"], [["a@example.com", "u2"]]);
    await runOnce(w, r); // u2 may fail (the email is still u1's in Iterable): that is reported

    // the audience empties: a run that reports no failure must leave the list empty
    await model(w, "hx3", ["email", "uid"], []);
    const third = await runOnce(w, r);
    expect(third.status).toBe("succeeded");
    expect(people(em, listId)).toEqual([]);
  });

  it("two userIds sharing one email in one batch: only the refused one is reported, and the other is unsubscribed later", async () => {
    const em = await hybrid();
    const r = resolvedSync(w, em, "hybrid", "hx4", { syncName: "hx4" });
    await model(
      w,
      "hx4",
      ["email", "uid"],
      [
        ["a@example.com", "u1"],
        ["a@example.com", "u2"],
      ],
    );
    const first = await runOnce(w, r);
    const listId = first.list?.id ?? -1;
    // Iterable took u1 and refused u2 (the email is u1's): one failure, not two
    expect(people(em, listId)).toEqual(["u1|a@example.com"]);
    expect.soft(first.failed.subscribe).toBe(1);

    await model(w, "hx4", ["email", "uid"], []);
    const second = await runOnce(w, r);
    expect(second.status).toBe("succeeded");
    expect(people(em, listId)).toEqual([]);
  });
});
