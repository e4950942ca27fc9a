import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, SourceError } from "../../src/errors.js";
import type { ProjectType } from "../../src/iterable/wire.js";
import {
  buildSnapshot,
  createOutcomesTable,
  dropWorkTables,
  duplicateRows,
  invalidRows,
  type Plan,
  type PlanRecord,
  planRecords,
  preparePlan,
} from "../../src/planner/planner.js";
import { snapshotFormOf, snapshotRowsSql } from "../../src/planner/sql.js";
import type { Source } from "../../src/sources/source.js";
import { commitSnapshot, ensureState, getMetadata } from "../../src/state/store.js";
import { OutcomeWriter } from "../../src/sync/outcomes.js";
import {
  availableDialects,
  createWarehouse,
  type TestWarehouse,
  writeTable,
} from "../support/sources.js";

const dialects = await availableDialects();

type Decision = "ok" | "fail" | "unsent";

async function allRecords(
  source: Source,
  plan: Plan,
  op: "subscribe" | "unsubscribe",
): Promise<PlanRecord[]> {
  const out: PlanRecord[] = [];
  for await (const b of planRecords(source, plan, op)) out.push(...b);
  return out.sort((a, b) => (a.identity < b.identity ? -1 : a.identity > b.identity ? 1 : 0));
}

async function snapshotColumns(source: Source, table: string): Promise<string[]> {
  const cols = await source.describe(
    `select * from ${source.dialect.table(source.stateSchema, table)}`,
  );
  return cols.map((c) => c.name.toLowerCase());
}

/** A snapshot's rows as identity|email|user_id, whatever its form. */
async function snapshotRows(source: Source, table: string): Promise<string[]> {
  const form = snapshotFormOf(await snapshotColumns(source, table));
  const rows = await source.query(
    `select s.identity, s.email, s.user_id from ${snapshotRowsSql(source.dialect, source.stateSchema, table, form)} s`,
  );
  return rows.map((r) => `${r.identity}|${r.email ?? ""}|${r.user_id ?? ""}`).sort();
}

describe.each(dialects)("planner on %s", (dialect) => {
  let w: TestWarehouse;
  let source: Source;
  let runId = 0;

  beforeAll(async () => {
    w = await createWarehouse(dialect);
    source = await w.open();
    await ensureState(source);
  });
  afterAll(async () => {
    await source?.close();
    await w?.cleanup();
  });

  const model = (table: string) => `select * from ${source.dialect.table(w.dataSchema, table)}`;

  /** Plans against the committed baseline, applies the decisions as outcomes, commits. */
  async function cycle(
    sync: string,
    projectType: ProjectType,
    table: string,
    identifiers: { email?: string; userId?: string },
    decide: (op: "subscribe" | "unsubscribe", r: PlanRecord) => Decision = () => "ok",
    opts: { retry?: boolean; commit?: boolean } = {},
  ) {
    const meta = await getMetadata(source, sync);
    runId++;
    const plan = await preparePlan({
      source,
      syncName: sync,
      projectType,
      modelSql: model(table),
      identifiers,
      runId,
      baseline: meta?.snapshotTable ?? null,
    });
    const subs = await allRecords(source, plan, "subscribe");
    const unsubs = await allRecords(source, plan, "unsubscribe");
    if (opts.commit === false) {
      await dropWorkTables(source, plan);
      return { plan, subs, unsubs };
    }
    await createOutcomesTable(source, plan);
    const writer = new OutcomeWriter(source, plan.tables.outcomes, opts.retry ?? true);
    for (const [op, recs] of [
      ["unsubscribe", unsubs],
      ["subscribe", subs],
    ] as const) {
      for (const r of recs) {
        const d = decide(op, r);
        if (d === "unsent") continue;
        await writer.add({
          key: r.identity,
          op,
          email: r.email,
          userId: r.userId,
          status: d === "ok" ? "succeeded" : "failed",
          code: d === "ok" ? null : "server_error",
          message: d === "ok" ? null : "boom",
        });
      }
    }
    await writer.flush();
    await buildSnapshot(source, plan);
    await commitSnapshot(source, sync, runId, plan.tables.snap, "fp");
    await dropWorkTables(source, plan);
    return { plan, subs, unsubs };
  }

  it("first run subscribes every member; invalid and duplicate rows are counted", async () => {
    await writeTable(
      source,
      w.dataSchema,
      "m1",
      ["email", "name"],
      [
        ["A@Example.com", "a"],
        ["  a@example.com ", "a again"],
        ["b@example.com", "b"],
        [null, "no email"],
        ["", "empty"],
        ["c@example.com", "c"],
      ],
    );
    const { plan, subs, unsubs } = await cycle("s1", "email", "m1", { email: "email" });
    expect(plan.firstRun).toBe(true);
    expect(plan.rowsRead).toBe(6);
    expect(plan.invalidRows).toBe(2);
    expect(plan.members).toBe(3);
    expect(plan.duplicateRows).toBe(0);
    expect(subs.map((s) => s.email)).toEqual(["a@example.com", "b@example.com", "c@example.com"]);
    expect(subs.every((s) => s.kind === "added")).toBe(true);
    expect(unsubs).toEqual([]);
  });

  it("second run: adds, removes with snapshot identifiers, leaves unchanged rows alone", async () => {
    await writeTable(
      source,
      w.dataSchema,
      "m1",
      ["email"],
      [["a@example.com"], ["c@example.com"], ["d@example.com"]],
    );
    const { plan, subs, unsubs } = await cycle("s1", "email", "m1", { email: "email" });
    expect(plan.firstRun).toBe(false);
    expect(subs.map((s) => s.email)).toEqual(["d@example.com"]);
    expect(unsubs.map((s) => s.email)).toEqual(["b@example.com"]);
    expect(plan.unchanged).toBe(2);
  });

  it("a failed subscribe is planned again; a failed unsubscribe is planned again", async () => {
    await writeTable(source, w.dataSchema, "m1", ["email"], [["a@example.com"], ["e@example.com"]]);
    // c and d removed (unsubscribe d fails), e added (fails)
    await cycle("s1", "email", "m1", { email: "email" }, (op, r) =>
      (op === "unsubscribe" && r.email === "d@example.com") ||
      (op === "subscribe" && r.email === "e@example.com")
        ? "fail"
        : "ok",
    );
    const next = await cycle("s1", "email", "m1", { email: "email" }, () => "ok", {
      commit: false,
    });
    expect(next.subs.map((s) => s.email)).toEqual(["e@example.com"]);
    expect(next.unsubs.map((s) => s.email)).toEqual(["d@example.com"]);
  });

  it("retryFailedRecords false commits failures as if synced", async () => {
    await writeTable(source, w.dataSchema, "m2", ["email"], [["x@example.com"], ["y@example.com"]]);
    await cycle(
      "s2",
      "email",
      "m2",
      { email: "email" },
      (_op, r) => (r.email === "y@example.com" ? "fail" : "ok"),
      { retry: false },
    );
    const next = await cycle("s2", "email", "m2", { email: "email" }, () => "ok", {
      commit: false,
    });
    expect(next.subs).toEqual([]);
    expect(next.plan.unchanged).toBe(2);
  });

  it("a plan that is never committed leaves the baseline: the next plan is the same", async () => {
    await writeTable(source, w.dataSchema, "m2", ["email"], [["x@example.com"], ["z@example.com"]]);
    const a = await cycle("s2", "email", "m2", { email: "email" }, () => "ok", { commit: false });
    const b = await cycle("s2", "email", "m2", { email: "email" }, () => "ok", { commit: false });
    expect(a.subs).toEqual(b.subs);
    expect(a.unsubs).toEqual(b.unsubs);
    expect(a.subs.map((s) => s.email)).toEqual(["z@example.com"]);
    expect(a.unsubs.map((s) => s.email)).toEqual(["y@example.com"]);
  });

  it("cancelled delivery: records never sent keep their old state", async () => {
    await writeTable(source, w.dataSchema, "m2", ["email"], [["x@example.com"], ["z@example.com"]]);
    await cycle("s2", "email", "m2", { email: "email" }, () => "unsent");
    const meta = await getMetadata(source, "s2");
    expect(await snapshotRows(source, meta?.snapshotTable ?? "")).toEqual([
      "e:x@example.com|x@example.com|",
      "e:y@example.com|y@example.com|",
    ]);
  });

  it("hybrid: a row that gains a userId is subscribed under the new identity and its old unsubscribe is not sent", async () => {
    await writeTable(
      source,
      w.dataSchema,
      "h",
      ["email", "uid"],
      [
        ["p@example.com", null],
        ["q@example.com", "q1"],
      ],
    );
    await cycle("h1", "hybrid", "h", { email: "email", userId: "uid" });
    await writeTable(
      source,
      w.dataSchema,
      "h",
      ["email", "uid"],
      [
        ["p@example.com", "p1"],
        ["q@example.com", "q1"],
      ],
    );
    const { plan, subs, unsubs } = await cycle("h1", "hybrid", "h", {
      email: "email",
      userId: "uid",
    });
    expect(subs.map((s) => `${s.identity}|${s.kind}`)).toEqual(["u:p1|added"]);
    expect(unsubs).toEqual([]);
    expect(plan.skippedUnsubscribe).toBe(1);
    const meta = await getMetadata(source, "h1");
    expect(await snapshotRows(source, meta?.snapshotTable ?? "")).toEqual([
      "u:p1|p@example.com|p1",
      "u:q1|q@example.com|q1",
    ]);
  });

  /** A model of (email, uid) rows. */
  const hybridTable = (table: string, rows: (string | null)[][]) =>
    writeTable(source, w.dataSchema, table, ["email", "uid"], rows);

  it("snapshots are written in the dialect's form and keep every member's identity", async () => {
    // hybrid: an email-only member, a member whose padded userId is invalid (identified by its
    // email, the userId kept as given), a userId member with an email, one without
    const rows: (string | null)[][] = [
      ["e1@example.com", null],
      ["e2@example.com", " pad"],
      ["u1@example.com", "u1"],
      [null, "u2"],
    ];
    await hybridTable("f1", rows);
    const first = await cycle("f1", "hybrid", "f1", { email: "email", userId: "uid" });
    const members = first.subs.map((s) => `${s.identity}|${s.email ?? ""}|${s.userId ?? ""}`);
    expect(members.sort()).toEqual([
      "e:e1@example.com|e1@example.com|",
      "e:e2@example.com|e2@example.com| pad",
      "u:u1|u1@example.com|u1",
      "u:u2||u2",
    ]);
    const table = (await getMetadata(source, "f1"))?.snapshotTable ?? "";
    const columns = await snapshotColumns(source, table);
    if (dialect === "duckdb") {
      expect(columns).toEqual(["email", "user_id", "by_user"]);
    } else {
      expect(columns).toEqual(["identity", "email", "user_id"]);
    }
    expect(await snapshotRows(source, table)).toEqual(members);
    // the same model again: every member matched in the snapshot
    const again = await cycle("f1", "hybrid", "f1", { email: "email", userId: "uid" });
    expect(again.subs).toEqual([]);
    expect(again.unsubs).toEqual([]);
    expect(again.plan.unchanged).toBe(4);
  });

  it("a snapshot with an identity column (earlier versions, other warehouses) is still planned against", async () => {
    await hybridTable("f2", [
      ["a@example.com", null],
      ["b@example.com", "b1"],
      ["c@example.com", " bad"],
    ]);
    await cycle("f2", "hybrid", "f2", { email: "email", userId: "uid" });
    const d = source.dialect;
    const table = (await getMetadata(source, "f2"))?.snapshotTable ?? "";
    const form = snapshotFormOf(await snapshotColumns(source, table));
    // the committed snapshot rewritten with an identity column, note and all
    const old = `${table}_old`;
    await source.exec(
      d.createTableAs(
        d.table(source.stateSchema, old),
        `select s.identity, s.email, s.user_id from ${snapshotRowsSql(d, source.stateSchema, table, form)} s`,
      ),
    );
    expect(await snapshotColumns(source, old)).toEqual(["identity", "email", "user_id"]);
    runId++;
    await commitSnapshot(source, "f2", runId, old, "fp");
    // a: unchanged, b: a new email, c: removed, d: added
    await hybridTable("f2", [
      ["a@example.com", null],
      ["b2@example.com", "b1"],
      ["d@example.com", null],
    ]);
    const next = await cycle("f2", "hybrid", "f2", { email: "email", userId: "uid" });
    expect(next.subs.map((s) => `${s.identity}|${s.kind}|${s.email}`)).toEqual([
      "e:d@example.com|added|d@example.com",
      "u:b1|changed|b2@example.com",
    ]);
    expect(next.unsubs.map((s) => `${s.identity}|${s.email}|${s.userId ?? ""}`)).toEqual([
      "e:c@example.com|c@example.com| bad",
    ]);
    expect(next.plan.unchanged).toBe(1);
    // and the snapshot it commits is in the dialect's form again
    const after = (await getMetadata(source, "f2"))?.snapshotTable ?? "";
    expect(await snapshotRows(source, after)).toEqual([
      "e:a@example.com|a@example.com|",
      "e:d@example.com|d@example.com|",
      "u:b1|b2@example.com|b1",
    ]);
  });

  it("hybrid: a new email for the same userId subscribes again; a userId change unsubscribes the old one", async () => {
    await writeTable(
      source,
      w.dataSchema,
      "h",
      ["email", "uid"],
      [
        ["p2@example.com", "p1"],
        ["r@example.com", "q2"],
      ],
    );
    const { subs, unsubs } = await cycle("h1", "hybrid", "h", { email: "email", userId: "uid" });
    expect(subs.map((s) => `${s.identity}|${s.kind}|${s.email}`)).toEqual([
      "u:p1|changed|p2@example.com",
      "u:q2|added|r@example.com",
    ]);
    expect(unsubs.map((s) => `${s.identity}|${s.email}|${s.userId}`)).toEqual([
      "u:q1|q@example.com|q1",
    ]);
  });

  it("hybrid: a failed subscribe of a changed member keeps its previous snapshot row", async () => {
    await writeTable(
      source,
      w.dataSchema,
      "h",
      ["email", "uid"],
      [
        ["p3@example.com", "p1"],
        ["r@example.com", "q2"],
      ],
    );
    await cycle("h1", "hybrid", "h", { email: "email", userId: "uid" }, () => "fail");
    const meta = await getMetadata(source, "h1");
    expect(await snapshotRows(source, meta?.snapshotTable ?? "")).toEqual([
      "u:p1|p2@example.com|p1",
      "u:q2|r@example.com|q2",
    ]);
  });

  it("hybrid: invalid userId falls back to the email identity; conflicting duplicates lose deterministically", async () => {
    await writeTable(
      source,
      w.dataSchema,
      "h2",
      ["email", "uid"],
      [
        ["s@example.com", " 42"],
        ["t@example.com", "dup"],
        ["u@example.com", "dup"],
        ["v@example.com", "v"],
        ["V@example.com ", "v"],
        [null, "x".repeat(53)],
        ["w@example.com", null],
        ["w@example.com", "w1"],
      ],
    );
    const { plan, subs } = await cycle("h2", "hybrid", "h2", { email: "email", userId: "uid" });
    expect(subs.map((s) => s.identity)).toEqual(["e:s@example.com", "u:dup", "u:v", "u:w1"]);
    expect(subs.find((s) => s.identity === "u:dup")?.email).toBe("t@example.com");
    expect(plan.duplicateRows).toBe(1);
    expect(plan.invalidRows).toBe(1);
  });

  it("hybrid: rows without a repeated identity plan as rows with one (merge, shared email, invalid rows)", async () => {
    const rows: (string | null)[][] = [
      ["m@example.com", "m1"],
      ["m@example.com", null], // email-only, merges into u:m1
      ["s@example.com", "s2"],
      ["s@example.com", "s1"], // shares the email with s2: s1 is kept, s2 is a duplicate
      ["e@example.com", null],
      [null, null], // invalid
      [" ", "x".repeat(53)], // invalid
    ];
    // The same rows, plus a repeat of one identity: planned through grouping.
    await writeTable(source, w.dataSchema, "hu", ["email", "uid"], rows);
    await writeTable(
      source,
      w.dataSchema,
      "hr",
      ["email", "uid"],
      [...rows, ["e@example.com", ""]],
    );
    const outcome = async (sync: string, table: string) => {
      const { plan, subs } = await cycle(sync, "hybrid", table, { email: "email", userId: "uid" });
      const invalid: string[] = [];
      const dups: string[] = [];
      // the work tables are dropped after a cycle: plan again for the streams
      runId++;
      const again = await preparePlan({
        source,
        syncName: `${sync}x`,
        projectType: "hybrid",
        modelSql: model(table),
        identifiers: { email: "email", userId: "uid" },
        runId,
        baseline: null,
      });
      for await (const b of invalidRows(source, again)) {
        invalid.push(...b.map((r) => `${r.email}|${r.userId}`));
      }
      for await (const b of duplicateRows(source, again)) {
        dups.push(...b.map((r) => `${r.identity}|${r.email}|${r.keptUserId}`));
      }
      await dropWorkTables(source, again);
      return {
        plan,
        subs: subs.map((r) => `${r.identity}|${r.email}|${r.userId}`),
        invalid: invalid.sort(),
        dups: dups.sort(),
      };
    };
    const unique = await outcome("hu", "hu");
    const repeated = await outcome("hr", "hr");
    expect(unique.subs).toEqual([
      "e:e@example.com|e@example.com|null",
      "u:m1|m@example.com|m1",
      "u:s1|s@example.com|s1",
    ]);
    expect(unique.invalid).toEqual(["null|null", `null|${"x".repeat(53)}`]);
    expect(unique.dups).toEqual(["u:s2|s@example.com|s1"]);
    expect(unique.plan.rowsRead).toBe(7);
    expect(unique.plan.invalidRows).toBe(2);
    expect(unique.plan.members).toBe(3);
    expect(unique.plan.duplicateRows).toBe(1);
    expect(repeated.subs).toEqual(unique.subs);
    expect(repeated.invalid).toEqual(unique.invalid);
    expect(repeated.dups).toEqual(unique.dups);
    expect(repeated.plan.members).toBe(3);
    expect(repeated.plan.duplicateRows).toBe(1);
  });

  it("userId project: ids are case-sensitive and not trimmed", async () => {
    await writeTable(source, w.dataSchema, "u", ["uid"], [["abc"], ["ABC"], ["abc "], ["12345"]]);
    const { plan, subs } = await cycle("u1", "userId", "u", { userId: "uid" });
    expect(subs.map((s) => s.identity)).toEqual(["u:12345", "u:ABC", "u:abc"]);
    expect(plan.invalidRows).toBe(1);
  });

  it("an empty model plans nothing on a first run and removes everyone after", async () => {
    await writeTable(source, w.dataSchema, "e", ["email"], [["only@example.com"]]);
    await cycle("e1", "email", "e", { email: "email" });
    await writeTable(source, w.dataSchema, "e", ["email"], []);
    const { plan, unsubs } = await cycle("e1", "email", "e", { email: "email" });
    expect(plan.rowsRead).toBe(0);
    expect(unsubs.map((u) => u.email)).toEqual(["only@example.com"]);
  });

  it("a model missing a mapped column is a config error naming the path", async () => {
    await writeTable(source, w.dataSchema, "m3", ["mail"], [["a@example.com"]]);
    await expect(
      preparePlan({
        source,
        syncName: "vip",
        projectType: "email",
        modelSql: model("m3"),
        identifiers: { email: "email" },
        runId: 99,
        baseline: null,
      }),
    ).rejects.toThrow(
      new ConfigError(
        'column "email" not in model; the model returns: mail',
        "syncs.vip.identifiers.email",
      ),
    );
  });

  it("a model that errors names the sync", async () => {
    const err = await preparePlan({
      source,
      syncName: "vip",
      projectType: "email",
      modelSql: "select email from no_such_table_here",
      identifiers: { email: "email" },
      runId: 98,
      baseline: null,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceError);
    expect((err as Error).message).toMatch(/^sync "vip": the model does not run: /);
  });
});
