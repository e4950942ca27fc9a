/**
 * With a committed snapshot the planner builds members from the rows as they are and checks after
 * the diff that no identity repeats and (hybrid) that no two members share an email
 * (uniqueCheckSql); the snapshot's note says whether its emails are distinct. These cases repeat
 * identities and share emails in every way the check must see. Hybrid plans are compared with the
 * plan of the same rows against a copy of the snapshot without the note, which takes the general
 * way (a count of distinct values before the members are built); email and userId plans with
 * what the general way gives, written out.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ProjectType } from "../../src/iterable/wire.js";
import {
  buildSnapshot,
  createOutcomesTable,
  dropWorkTables,
  duplicateRows,
  invalidRows,
  planRecords,
  preparePlan,
} from "../../src/planner/planner.js";
import { DISTINCT_EMAILS_NOTE, tableNoteSql, workTable } from "../../src/planner/sql.js";
import type { Source } from "../../src/sources/source.js";
import { ensureState } from "../../src/state/store.js";
import {
  availableDialects,
  createWarehouse,
  type TestWarehouse,
  writeTable,
} from "../support/sources.js";

const dialects = await availableDialects();

type Row = (string | null)[];

describe.each(dialects)("plans checked after the diff on %s", (dialect) => {
  let w: TestWarehouse;
  let source: Source;
  let runId = 0;
  let tableSeq = 0;

  beforeAll(async () => {
    w = await createWarehouse(dialect);
    source = await w.open();
    await ensureState(source);
  });
  afterAll(async () => {
    await source?.close();
    await w?.cleanup();
  });

  const ids = (projectType: ProjectType) =>
    projectType === "email" ? { email: "email" } : { email: "email", userId: "uid" };

  async function model(rows: Row[]): Promise<string> {
    const table = `m${++tableSeq}`;
    await writeTable(source, w.dataSchema, table, ["email", "uid"], rows);
    return `select * from ${source.dialect.table(w.dataSchema, table)}`;
  }

  const planWith = (
    src: Source,
    projectType: ProjectType,
    modelSql: string,
    baseline: string | null,
  ) =>
    preparePlan({
      source: src,
      syncName: "uc",
      projectType,
      modelSql,
      identifiers: ids(projectType),
      runId: ++runId,
      baseline,
    });

  /** Plans, then commits a snapshot; `fail` names identities whose outcome is not confirmed. */
  async function commit(
    projectType: ProjectType,
    modelSql: string,
    baseline: string | null,
    fail: string[] = [],
    snapshotSource: Source = source,
  ): Promise<string> {
    const d = source.dialect;
    const schema = source.stateSchema;
    const plan = await planWith(source, projectType, modelSql, baseline);
    await createOutcomesTable(source, plan);
    const failed = fail.length > 0 ? fail.map((f) => d.literal(f)).join(", ") : "''";
    await source.exec(
      `insert into ${workTable(d, schema, plan.tables.outcomes)} (identity, op, email, user_id, status, confirmed) ` +
        `select identity, op, email, user_id, 'succeeded', case when identity in (${failed}) then 0 else 1 end ` +
        `from ${workTable(d, schema, plan.tables.plan)} where send = 1`,
    );
    await buildSnapshot(snapshotSource, plan);
    await dropWorkTables(source, plan);
    return plan.tables.snap;
  }

  /** Everything a plan tells and streams, in a comparable form. */
  async function outcome(projectType: ProjectType, modelSql: string, baseline: string) {
    const log: string[] = [];
    const logged = new Proxy(source, {
      get(target, prop) {
        const value: unknown = Reflect.get(target, prop, target);
        if (prop === "query" || prop === "exec") {
          return (sql: string, params?: unknown[]) => {
            log.push(sql);
            return prop === "query" ? target.query(sql, params) : target.exec(sql, params);
          };
        }
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const plan = await planWith(logged, projectType, modelSql, baseline);
    const records = async (op: "subscribe" | "unsubscribe") => {
      const out: string[] = [];
      for await (const b of planRecords(source, plan, op)) {
        out.push(...b.map((r) => `${r.identity}|${r.kind}|${r.email}|${r.userId}`));
      }
      return out.sort();
    };
    const invalid: string[] = [];
    for await (const b of invalidRows(source, plan)) {
      invalid.push(...b.map((r) => `${r.email}|${r.userId}`));
    }
    const dups: string[] = [];
    for await (const b of duplicateRows(source, plan)) {
      dups.push(...b.map((r) => `${r.identity}|${r.email}|${r.userId}|${r.keptEmail}`));
    }
    const result = {
      rowsRead: plan.rowsRead,
      invalidRows: plan.invalidRows,
      members: plan.members,
      duplicateRows: plan.duplicateRows,
      subscribe: plan.subscribe,
      unsubscribe: plan.unsubscribe,
      skippedUnsubscribe: plan.skippedUnsubscribe,
      unchanged: plan.unchanged,
      previousMembers: plan.previousMembers,
      subs: await records("subscribe"),
      unsubs: await records("unsubscribe"),
      invalid: invalid.sort(),
      dups: dups.sort(),
    };
    await dropWorkTables(source, plan);
    const countedDistinct = log.some(
      (sql) => /count\(distinct/i.test(sql) && sql.includes("_rows_"),
    );
    return { result, countedDistinct };
  }

  async function note(table: string): Promise<string | null> {
    const sql = tableNoteSql(source.dialect);
    if (!sql) return null;
    const rows = await source.query(sql, [source.stateSchema, table]);
    const v = rows[0]?.note;
    return typeof v === "string" ? v : null;
  }

  /** A copy of a snapshot without its note: planned against, it takes the general way. */
  async function withoutNote(snap: string): Promise<string> {
    const d = source.dialect;
    const copy = `${snap}_plain`;
    await source.exec(d.dropTable(d.table(source.stateSchema, copy)));
    await source.exec(
      `create table ${d.table(source.stateSchema, copy)} as select * from ${d.table(source.stateSchema, snap)}`,
    );
    return copy;
  }

  const first: Row[] = [
    ["a@example.com", "1"],
    ["b@example.com", "2"],
    ["c@example.com", "3"],
    ["d@example.com", null],
    ["e@example.com", " bad"],
    [null, null],
  ];

  const hybridCases: [string, Row[]][] = [
    ["nothing repeats", [...first, ["f@example.com", "6"]]],
    ["a userId repeats, matched in the snapshot", [...first, ["z@example.com", "1"]]],
    ["a new userId repeats", [...first, ["y@example.com", "9"], ["x@example.com", "9"]]],
    ["an email-only row repeats", [...first, ["D@example.com ", null]]],
    ["a new userId takes an unchanged member's email", [...first, ["a@example.com", "9"]]],
    ["two new userIds share an email", [...first, ["n@example.com", "8"], ["n@example.com", "9"]]],
    ["a new email-only row takes a userId member's email", [...first, ["b@example.com", null]]],
    [
      "a new email-only row and a new userId share an email",
      [...first, ["q@example.com", null], ["q@example.com", "7"]],
    ],
    [
      "a changed member takes another member's email",
      [["a@example.com", "1"], ["a@example.com", "2"], ...first.slice(2)],
    ],
    ["a new userId takes an email-only member's email", [...first, ["d@example.com", "5"]]],
  ];

  for (const [name, rows] of hybridCases) {
    it(`hybrid: ${name}`, async () => {
      const snap = await commit("hybrid", await model(first), null);
      if (tableNoteSql(source.dialect)) expect(await note(snap)).toBe(DISTINCT_EMAILS_NOTE);
      const second = await model(rows);
      const checked = await outcome("hybrid", second, snap);
      const general = await outcome("hybrid", second, await withoutNote(snap));
      expect(checked.result).toEqual(general.result);
      expect(general.countedDistinct).toBe(true);
      if (tableNoteSql(source.dialect) && name === "nothing repeats") {
        expect(checked.countedDistinct).toBe(false);
      }
    });
  }

  it("email: a repeated identity, matched or new, is one member", async () => {
    const snap = await commit(
      "email",
      await model([
        ["a@example.com", null],
        ["b@example.com", null],
      ]),
      null,
    );
    const { result, countedDistinct } = await outcome(
      "email",
      await model([
        ["a@example.com", null],
        [" A@Example.com", null],
        ["b@example.com", null],
        ["n@example.com", null],
        ["N@example.com", null],
      ]),
      snap,
    );
    expect(countedDistinct).toBe(false);
    expect(result).toMatchObject({
      rowsRead: 5,
      members: 3,
      duplicateRows: 0,
      subscribe: { added: 1, changed: 0 },
      unsubscribe: 0,
      unchanged: 2,
      previousMembers: 2,
      subs: ["e:n@example.com|added|n@example.com|null"],
      unsubs: [],
    });
  });

  it("userId: a repeated userId with another email is a conflicting duplicate", async () => {
    const snap = await commit(
      "userId",
      await model([
        ["a@example.com", "1"],
        ["b@example.com", "2"],
      ]),
      null,
    );
    const { result } = await outcome(
      "userId",
      await model([
        ["a@example.com", "1"],
        ["z@example.com", "1"],
        ["b@example.com", "2"],
        ["c@example.com", "9"],
        ["c@example.com", "9"],
      ]),
      snap,
    );
    expect(result).toMatchObject({
      rowsRead: 5,
      members: 3,
      duplicateRows: 1,
      subscribe: { added: 1, changed: 0 },
      unsubscribe: 0,
      unchanged: 2,
      subs: ["u:9|added|c@example.com|9"],
      dups: ["u:1|z@example.com|1|a@example.com"],
    });
  });

  it("a snapshot that keeps a previous row carries no note", async () => {
    if (!tableNoteSql(source.dialect)) return;
    const snap = await commit("hybrid", await model(first), null);
    // u:1 takes a new email that is not confirmed: the snapshot keeps its previous row
    const changed: Row[] = [["a2@example.com", "1"], ...first.slice(1)];
    const next = await commit("hybrid", await model(changed), snap, ["u:1"]);
    expect(await note(next)).toBeNull();
    // and a clean run after it writes the note again
    const clean = await commit("hybrid", await model(changed), next);
    expect(await note(clean)).toBe(DISTINCT_EMAILS_NOTE);
  });

  it("a snapshot whose note cannot be written is built all the same, and planned the general way", async () => {
    if (!tableNoteSql(source.dialect)) return;
    const refusing = new Proxy(source, {
      get(target, prop) {
        const value: unknown = Reflect.get(target, prop, target);
        if (prop === "exec") {
          return async (sql: string, params?: unknown[]) => {
            if (/^comment on table/i.test(sql)) throw new Error("no comments here");
            await target.exec(sql, params);
          };
        }
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const snap = await commit("hybrid", await model(first), null, [], refusing);
    expect(await note(snap)).toBeNull();
    const { result, countedDistinct } = await outcome("hybrid", await model(first), snap);
    expect(countedDistinct).toBe(true);
    expect(result).toMatchObject({
      members: 5,
      subscribe: { added: 0, changed: 0 },
      unsubscribe: 0,
    });
  });

  it("userId projects write no note (members may share emails)", async () => {
    if (!tableNoteSql(source.dialect)) return;
    const snap = await commit("userId", await model([["a@example.com", "1"]]), null);
    expect(await note(snap)).toBeNull();
  });
});
