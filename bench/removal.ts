/**
 * Large removals: a second sync that unsubscribes a share of a DuckDB audience, with the
 * unsubscribes' request bodies built by the warehouse (the product's way) against the same
 * unsubscribes sent record by record (the client without unsubscribeBodies), in the same run.
 *
 *   npx tsx bench/removal.ts [--rows 1000000] [--share 0.5] [--runs 4]
 *
 * The emulator runs in a child process (no rate limit, hybrid project); the syncs run in this
 * process, one after another. After a first sync of the whole model, each round removes the same
 * share of the rows (`id % k`), syncs (unsubscribes), puts the rows back and syncs again
 * (subscribes, built bodies: a reference for the same number of records). Rounds alternate
 * between the two ways of sending the unsubscribes, so that the machine's drift favours neither.
 * Prints medians, the ratio built/record-by-record of the removal syncs, their ratio to the
 * subscribe syncs of the same records, and the bench process's peak RSS during each kind of sync
 * (sampled every 50 ms; the emulator's memory is not in it).
 */
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { parseConfig } from "../src/config/index.js";
import { startEmulator } from "../src/emulator/index.js";
import type { Source } from "../src/sources/source.js";
import { withSync } from "../src/sync/context.js";
import type { DeliveryApi } from "../src/sync/deliver.js";
import { type RunReport, runSync } from "../src/sync/run.js";
import { serveUntilStdinEnds, spawnJson } from "./lib/child.js";
import { sampleRss } from "./lib/rss.js";
import { mb, median, num, secs } from "./lib/stats.js";
import { createBenchWarehouse, generateModel } from "./lib/warehouse.js";

const KEY = "bench-key-0123456789";
const TABLE = "audience";
const SELF = fileURLToPath(import.meta.url);

const { values } = parseArgs({
  options: {
    mode: { type: "string", default: "main" },
    rows: { type: "string", default: "1000000" },
    share: { type: "string", default: "0.5" },
    runs: { type: "string", default: "4" },
  },
});

if (values.mode === "serve") {
  const em = await startEmulator({ port: 0, projectType: "hybrid", apiKey: KEY });
  serveUntilStdinEnds(em);
} else {
  await main();
}

/** The client as delivery sees it, without built unsubscribes: they go record by record. */
function recordByRecord(api: DeliveryApi): DeliveryApi {
  return new Proxy(api, {
    get(target, prop, receiver) {
      if (prop === "unsubscribeBodies") return undefined;
      const v = Reflect.get(target, prop, receiver);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

async function main(): Promise<void> {
  const rows = num(values.rows, 1_000_000);
  const runs = num(values.runs, 4);
  const share = Number(values.share);
  if (!(share > 0 && share <= 1)) throw new TypeError("--share must be in (0, 1]");
  // rows with id % k < m are removed: m/k of them
  const k = 100;
  const m = Math.max(1, Math.round(share * k));
  const w = await createBenchWarehouse("duckdb");
  const cfg = w.config as { path: string; stateSchema: string };
  const { child: emulator, first } = await spawnJson<{ url: string }>(SELF, ["--mode", "serve"]);
  const exec = async (f: (s: Source) => Promise<unknown>) => {
    const s = await w.open();
    try {
      await f(s);
    } finally {
      await s.close();
    }
  };
  try {
    await exec((s) => generateModel(s, w.dataSchema, TABLE, rows));
    const config = parseConfig(
      `
sources:
  wh: { type: duckdb, path: ${JSON.stringify(cfg.path)}, stateSchema: ${cfg.stateSchema} }
destinations:
  it: { type: iterable, apiKey: ${KEY}, projectType: hybrid, baseUrl: ${JSON.stringify(first.url)} }
syncs:
  bench:
    source: wh
    destination: it
    table: main.${TABLE}
    list: { create: { name: bench removal } }
    identifiers: { email: email, userId: user_id }
`,
      { env: {} },
    );
    const rss = sampleRss();
    const sync = async (builtUnsubscribes: boolean) => {
      rss.reset();
      const started = performance.now();
      const report: RunReport = await withSync(config, "bench", ({ resolved, source, api }) =>
        runSync(resolved, { api: builtUnsubscribes ? api : recordByRecord(api), source }),
      );
      if (report.status !== "succeeded") throw new TypeError(`a sync ended ${report.status}`);
      return { ms: performance.now() - started, report, peakRss: rss.peak() };
    };
    await sync(true);
    const t = `main.${TABLE}`;
    const removal: Record<"built" | "record", number[]> = { built: [], record: [] };
    const peaks: Record<"built" | "record" | "back", number> = { built: 0, record: 0, back: 0 };
    const readd: number[] = [];
    let removed = 0;
    for (let r = 0; r < runs; r++) {
      const way = r % 2 === 0 ? "built" : "record";
      await exec(async (s) => {
        await s.exec(
          `create or replace table main.removed as select * from ${t} where id % ${k} < ${m}`,
        );
        await s.exec(`delete from ${t} where id % ${k} < ${m}`);
      });
      const out = await sync(way === "built");
      removed = out.report.succeeded.unsubscribe;
      removal[way].push(out.ms);
      peaks[way] = Math.max(peaks[way], out.peakRss);
      await exec(async (s) => {
        await s.exec(`insert into ${t} select * from main.removed`);
        await s.exec("drop table main.removed");
      });
      const back = await sync(true);
      readd.push(back.ms);
      peaks.back = Math.max(peaks.back, back.peakRss);
      console.log(
        `round ${r + 1}: ${removed} unsubscribed ${way === "built" ? "in built bodies" : "record by record"} in ${secs(out.ms)}; ` +
          `${back.report.succeeded.subscribe} subscribed back in ${secs(back.ms)}`,
      );
    }
    const built = median(removal.built);
    const record = median(removal.record);
    const back = median(readd);
    console.log(
      `\n${removed} unsubscribes of ${rows} members (medians): built ${secs(built)}, record by record ${secs(record)} ` +
        `(built/record ${(built / record).toFixed(2)}); subscribing them back ${secs(back)} ` +
        `(removal/subscribes: built ${(built / back).toFixed(2)}, record by record ${(record / back).toFixed(2)}); ` +
        `peak RSS: built ${mb(peaks.built)}, record by record ${mb(peaks.record)}, subscribing back ${mb(peaks.back)}`,
    );
    console.log(
      JSON.stringify({
        rows,
        unsubscribes: removed,
        runs,
        builtMs: Math.round(built),
        recordMs: Math.round(record),
        subscribeBackMs: Math.round(back),
        ratioBuiltToRecord: Number((built / record).toFixed(2)),
        ratioBuiltToSubscribe: Number((built / back).toFixed(2)),
        ratioRecordToSubscribe: Number((record / back).toFixed(2)),
        peakRss: peaks,
      }),
    );
    rss.stop();
  } finally {
    emulator.stdin?.end();
    await w.cleanup();
  }
}
