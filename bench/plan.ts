/**
 * Planning time against a plain SQL diff. Builds a hybrid model of N rows inside the warehouse,
 * plans and commits a first run (every outcome confirmed, written by SQL), changes about 1.1% of
 * the rows, then times, interleaved and N times each:
 *   plan  preparePlan of the second run (rows + members + plan tables + counts), then its work
 *         tables dropped;
 *   join  `create table ... as select ... from model full outer join snapshot ... where distinct`
 *         over the same model and the same committed snapshot.
 * Prints medians, the ratio plan/join and the Node process's peak RSS (sampled every 50 ms, and
 * the kernel's maxRSS). --profile-sql prints the time of every statement of one more second-run
 * plan and of one first-run plan.
 *
 *   npx tsx bench/plan.ts --rows 1000000 [--dialect duckdb|postgres] [--runs 3]
 *     [--memory-limit 256MB] [--threads N] [--profile-sql]
 */
import { parseArgs } from "node:util";
import {
  buildSnapshot,
  createOutcomesTable,
  dropWorkTables,
  type Plan,
  preparePlan,
} from "../src/planner/planner.js";
import { snapshotFormFor, snapshotRowsSql, workTable } from "../src/planner/sql.js";
import type { Source } from "../src/sources/source.js";
import { ensureState } from "../src/state/store.js";
import { maxRss, sampleRss } from "./lib/rss.js";
import { mb, median, num, secs, timed } from "./lib/stats.js";
import {
  applyChange,
  type BenchDialect,
  createBenchWarehouse,
  generateModel,
  profiledSource,
} from "./lib/warehouse.js";

const { values } = parseArgs({
  options: {
    rows: { type: "string", default: "1000000" },
    dialect: { type: "string", default: "duckdb" },
    runs: { type: "string", default: "3" },
    "memory-limit": { type: "string" },
    threads: { type: "string" },
    "profile-sql": { type: "boolean", default: false },
  },
});
const rows = num(values.rows, 1_000_000);
const runs = num(values.runs, 3);
const dialect = values.dialect as BenchDialect;
if (dialect !== "duckdb" && dialect !== "postgres")
  throw new TypeError("--dialect duckdb|postgres");

const SYNC = "bench";
const TABLE = "audience";

const rss = sampleRss();
const w = await createBenchWarehouse(dialect);
const source = await w.open();
try {
  await main(source);
} finally {
  await source.close();
  await w.cleanup();
  rss.stop();
}

async function main(source: Source): Promise<void> {
  const d = source.dialect;
  if (d.name === "duckdb") {
    if (values["memory-limit"])
      await source.exec(`SET memory_limit = ${d.literal(values["memory-limit"])}`);
    if (values.threads) await source.exec(`SET threads = ${Number(values.threads)}`);
  }
  await ensureState(source);
  const schema = source.stateSchema;
  const model = `select * from ${d.table(w.dataSchema, TABLE)}`;
  const plan = (runId: number, baseline: string | null, src: Source = source) =>
    preparePlan({
      source: src,
      syncName: SYNC,
      projectType: "hybrid",
      modelSql: model,
      identifiers: { email: "email", userId: "user_id" },
      runId,
      baseline,
    });

  const gen = await timed(() => generateModel(source, w.dataSchema, TABLE, rows));
  console.log(`${dialect}: generated ${rows} rows in ${secs(gen.ms)}`);

  // First run, committed with every outcome confirmed (written by SQL: this bench is about planning).
  const first = await timed(async () => {
    const p = await plan(1, null);
    await createOutcomesTable(source, p);
    await source.exec(
      `insert into ${workTable(d, schema, p.tables.outcomes)} (identity, op, email, user_id, status, confirmed) ` +
        `select identity, op, email, user_id, 'succeeded', 1 from ${workTable(d, schema, p.tables.plan)} where send = 1`,
    );
    await buildSnapshot(source, p);
    await dropWorkTables(source, p);
    return p;
  });
  const baseline = first.value.tables.snap;
  console.log(
    `first plan + snapshot: ${secs(first.ms)} (${first.value.members} members, ${first.value.invalidRows} invalid)`,
  );

  const change = await applyChange(source, w.dataSchema, TABLE, rows, 1);
  console.log(
    `changed: ${change.deleted} deleted, ${change.inserted} inserted, ${change.changed} emails changed`,
  );

  // the snapshot as (identity, email, user_id), in the form this warehouse writes
  const snap = snapshotRowsSql(d, schema, baseline, snapshotFormFor(d));
  const joinTable = d.table(schema, "bench_join_diff");
  const joinSql =
    `create table ${joinTable} as ` +
    `select s.identity as old_identity, s.email as old_email, s.user_id as old_user_id, m.k as identity, m.email, m.user_id ` +
    `from (select coalesce('u:' || user_id, 'e:' || email) as k, email, user_id from ${d.table(w.dataSchema, TABLE)}) m ` +
    `full outer join ${snap} s on s.identity = m.k ` +
    `where m.k is null or s.identity is null or m.email is distinct from s.email or m.user_id is distinct from s.user_id`;
  const joinOnce = async () => {
    await source.exec(d.dropTable(joinTable));
    await source.exec(joinSql);
    const n = Number((await source.query(`select count(*) as n from ${joinTable}`))[0]?.n ?? 0);
    return n;
  };

  const planMs: number[] = [];
  const joinMs: number[] = [];
  const planPeak: number[] = [];
  const joinPeak: number[] = [];
  let lastPlan: Plan | null = null;
  let joinRows = 0;
  for (let r = 0; r < runs; r++) {
    // Alternate which goes first, so caches and the OS favour neither.
    const order = r % 2 === 0 ? ["plan", "join"] : ["join", "plan"];
    for (const what of order) {
      rss.reset();
      if (what === "plan") {
        const t = await timed(() => plan(100 + r, baseline));
        planMs.push(t.ms);
        planPeak.push(rss.peak());
        lastPlan = t.value;
        await dropWorkTables(source, t.value);
      } else {
        const t = await timed(joinOnce);
        joinMs.push(t.ms);
        joinPeak.push(rss.peak());
        joinRows = t.value;
        await source.exec(d.dropTable(joinTable));
      }
    }
    console.log(
      `run ${r + 1}: plan ${secs(planMs[r] ?? 0)}, join ${secs(joinMs[r] ?? 0)}, ratio ${((planMs[r] ?? 0) / (joinMs[r] ?? 1)).toFixed(2)}`,
    );
  }
  if (lastPlan) {
    const p = lastPlan;
    console.log(
      `plan: ${p.rowsRead} rows, ${p.members} members, subscribe ${p.subscribe.added} added + ${p.subscribe.changed} changed, ` +
        `unsubscribe ${p.unsubscribe} (+${p.skippedUnsubscribe} skipped), unchanged ${p.unchanged}; join diff rows ${joinRows}`,
    );
  }

  if (values["profile-sql"]) {
    // A second run's plan (against the snapshot), then a first run's (no snapshot: what a first
    // sync plans before it sends anything).
    for (const [runId, base, what] of [
      [900, baseline, "a second run"],
      [901, null, "a first run"],
    ] as const) {
      const log: { sql: string; ms: number }[] = [];
      const p = await plan(runId, base, profiledSource(source, log));
      await dropWorkTables(source, p);
      console.log(`statements of the plan of ${what} (ms):`);
      for (const { sql, ms } of log) {
        console.log(`  ${ms.toFixed(0).padStart(7)}  ${sql.replace(/\s+/g, " ").slice(0, 160)}`);
      }
    }
  }

  const mp = median(planMs);
  const mj = median(joinMs);
  const summary = {
    dialect,
    rows,
    runs,
    memoryLimit: values["memory-limit"] ?? null,
    planMedianMs: Math.round(mp),
    joinMedianMs: Math.round(mj),
    ratio: Number((mp / mj).toFixed(2)),
    peakRssPlan: Math.max(...planPeak),
    peakRssJoin: Math.max(...joinPeak),
    peakRssProcess: rss.peak(),
    maxRss: maxRss(),
  };
  console.log(
    `\n${dialect} ${rows} rows, medians of ${runs}: plan ${secs(mp)}, join ${secs(mj)}, plan/join ${summary.ratio}x; ` +
      `peak RSS during plan ${mb(summary.peakRssPlan)}, during join ${mb(summary.peakRssJoin)}, process maxRSS ${mb(summary.maxRss)}`,
  );
  console.log(JSON.stringify(summary));
}
