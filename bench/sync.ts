/**
 * First sync of a DuckDB audience into the emulator, against the emulator's own ceiling; then
 * second syncs of about 1.1% changed rows, against the planner's time for the same change.
 *
 *   npx tsx bench/sync.ts --rows 1000000 [--runs 3] [--changes 3] [--memory-limit 256MB]
 *     [--profile DIR] [--alt-node-args=--single-threaded-gc] [--pin]
 *
 * The emulator runs in a child process (no rate limit, hybrid project). Each round, interleaved:
 *   ceiling c4 / c8  this process posts pre-built 1,000-subscriber bodies to a fresh list with 4 and
 *                    8 requests in flight (undici keep-alive pool): what the emulator can absorb;
 *   sync             a child process runs one real first sync (withSync + runSync, default
 *                    destination settings: 1,000 per request, concurrency 4) of the whole model
 *                    to a new list; it reports its wall time, delivery window and peak RSS, and
 *                    the CPU time it spent (all threads, DuckDB's included) against the emulator's
 *                    in the same window (/proc): on a 2-core machine the two share the cores, so
 *                    CPU time shows where the time goes when wall times are noisy. It also reports
 *                    how busy the whole machine was (/proc/stat, all cores) during the run and its
 *                    delivery window, beside the same figure for the c4 ceiling.
 * With --pin, the emulator runs on CPU 0 alone and this process, its ceiling loader and the sync
 * children on the other CPUs: the emulator stands in for Iterable, which has machines of its own,
 * so that what the sync (or the loader) does on its cores does not take the destination's. The
 * emulator then has one core in both phases (its collector's threads included), and the sync one
 * core fewer than the machine (on 2 cores: planning on one).
 * With --alt-node-args, every second round's sync child runs with those node arguments (an A/B in
 * one bench, rounds alternated, since the machine's speed drifts within minutes); the summary then
 * covers the plain rounds, and one more line compares the two kinds of round.
 * Then, for each change k: the model is changed by SQL, and a child times preparePlan against the
 * committed snapshot (work tables dropped), then runs the real second sync.
 */

import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Pool } from "undici";
import { parseConfig } from "../src/config/index.js";
import { startEmulator } from "../src/emulator/index.js";
import { dropWorkTables, preparePlan } from "../src/planner/planner.js";
import { openSource, type SourceConfig } from "../src/sources/index.js";
import { getMetadata } from "../src/state/store.js";
import { withSync } from "../src/sync/context.js";
import { type RunReport, runSync } from "../src/sync/run.js";
import { runJson, serveUntilStdinEnds, spawnJson } from "./lib/child.js";
import { busyShare, machineTicks, pinProcess, processCpuMs } from "./lib/cpu.js";
import { postBodies } from "./lib/loader.js";
import { maxRss, sampleRss } from "./lib/rss.js";
import { mb, median, num, secs } from "./lib/stats.js";
import { applyChange, createBenchWarehouse, generateModel } from "./lib/warehouse.js";

const KEY = "bench-key-0123456789";
const BATCH = 1000;
const TABLE = "audience";
const SELF = fileURLToPath(import.meta.url);

const { values } = parseArgs({
  options: {
    mode: { type: "string", default: "main" },
    rows: { type: "string", default: "1000000" },
    runs: { type: "string", default: "3" },
    changes: { type: "string", default: "3" },
    "memory-limit": { type: "string" },
    profile: { type: "string" },
    "alt-node-args": { type: "string" },
    pin: { type: "boolean", default: false },
    // child arguments
    db: { type: "string" },
    state: { type: "string" },
    url: { type: "string" },
    sync: { type: "string" },
    concurrency: { type: "string", default: "4" },
  },
});

interface SyncResult {
  ms: number;
  /** from the first record handed to the client to the end of delivery */
  deliveryMs: number;
  /** ms from the start of the run to the first progress report of each phase, and to the
   *  first record done (the first answer of a subscribe) */
  phases: Record<string, number>;
  /** preparePlan against the committed snapshot, timed before the sync (second syncs) */
  planMs: number | null;
  peakRss: number;
  maxRss: number;
  /** CPU time of this process during the run (all its threads, DuckDB's included), ms */
  cpuMs: number;
  /** of cpuMs, the kernel's share (system time), ms; and the minor page faults during the run */
  systemCpuMs: number;
  minorFaults: number;
  /** ms of CPU from the start of the run to the first progress report of each phase */
  phaseCpu: Record<string, number>;
  /** CPU time of the emulator process during the run, ms (filled in by the parent) */
  emulatorCpuMs?: number;
  /** share of the machine's CPU (all cores, every process) busy during the run, and during the
   *  delivery window; null where /proc cannot tell */
  machineBusy: number | null;
  machineBusyDelivery: number | null;
  status: string;
  succeeded: number;
  failed: number;
  planned: RunReport["planned"];
}

switch (values.mode) {
  case "serve":
    await serve();
    break;
  case "first":
  case "second":
    await childSync(values.mode === "second");
    break;
  default:
    await main();
}

async function serve(): Promise<void> {
  const em = await startEmulator({ port: 0, projectType: "hybrid", apiKey: KEY });
  serveUntilStdinEnds(em);
}

function configYaml(db: string, state: string, url: string, sync: string, c: number): string {
  const memory = values["memory-limit"] ? `, memoryLimit: ${values["memory-limit"]}` : "";
  return `
sources:
  wh: { type: duckdb, path: ${JSON.stringify(db)}, stateSchema: ${state}${memory} }
destinations:
  it: { type: iterable, apiKey: ${KEY}, projectType: hybrid, baseUrl: ${JSON.stringify(url)}, concurrency: ${c} }
syncs:
  ${sync}:
    source: wh
    destination: it
    table: main.${TABLE}
    list: { create: { name: ${JSON.stringify(`bench ${sync}`)} } }
    identifiers: { email: email, userId: user_id }
`;
}

/** One real sync in this (child) process; prints a SyncResult line. */
async function childSync(second: boolean): Promise<void> {
  const db = values.db as string;
  const state = values.state as string;
  const sync = values.sync as string;
  const config = parseConfig(
    configYaml(db, state, values.url as string, sync, num(values.concurrency, 4)),
    { env: {} },
  );
  const rss = sampleRss();
  const sourceConfig: SourceConfig = {
    type: "duckdb",
    path: db,
    stateSchema: state,
    ...(values["memory-limit"] ? { memoryLimit: values["memory-limit"] } : {}),
  };
  // Held open for the whole run so that the sync shares this instance and its settings.
  const keeper = await openSource(sourceConfig);
  try {
    let planMs: number | null = null;
    if (second) {
      const meta = await getMetadata(keeper, sync);
      const started = performance.now();
      const plan = await preparePlan({
        source: keeper,
        syncName: sync,
        projectType: "hybrid",
        modelSql: `select * from main.${TABLE}`,
        identifiers: { email: "email", userId: "user_id" },
        runId: 1_000_000,
        baseline: meta?.snapshotTable ?? null,
      });
      planMs = performance.now() - started;
      await dropWorkTables(keeper, plan);
    }
    let deliveryStart = 0;
    let deliveryEnd = 0;
    let ticksDelivery0: ReturnType<typeof machineTicks> = null;
    let ticksDelivery1: ReturnType<typeof machineTicks> = null;
    const phases: Record<string, number> = {};
    const phaseCpu: Record<string, number> = {};
    const cpu0 = process.cpuUsage();
    const faults0 = process.resourceUsage().minorPageFault;
    const cpuAt = () => {
      const c = process.cpuUsage(cpu0);
      return Math.round((c.user + c.system) / 1000);
    };
    const ticks0 = machineTicks();
    const started = performance.now();
    const report = await withSync(config, sync, ({ resolved, source, api }) =>
      runSync(
        resolved,
        { api, source },
        {
          onProgress: (p) => {
            if ((p.phase === "unsubscribe" || p.phase === "subscribe") && deliveryStart === 0) {
              deliveryStart = performance.now();
              ticksDelivery0 = machineTicks();
            }
            if (p.phase === "commit" && deliveryEnd === 0) {
              deliveryEnd = performance.now();
              ticksDelivery1 = machineTicks();
            }
            const at = Math.round(performance.now() - started);
            phases[p.phase] ??= at;
            phaseCpu[p.phase] ??= cpuAt();
            if (p.done > 0) phases[`${p.phase} first answer`] ??= at;
          },
        },
      ),
    );
    const ms = performance.now() - started;
    const usage = process.cpuUsage(cpu0);
    const cpuMs = Math.round((usage.user + usage.system) / 1000);
    const systemCpuMs = Math.round(usage.system / 1000);
    const minorFaults = process.resourceUsage().minorPageFault - faults0;
    const ticks1 = machineTicks();
    const result: SyncResult = {
      ms,
      deliveryMs: deliveryStart > 0 && deliveryEnd > 0 ? deliveryEnd - deliveryStart : 0,
      phases: { ...phases, end: Math.round(ms) },
      planMs,
      peakRss: rss.peak(),
      maxRss: maxRss(),
      cpuMs,
      systemCpuMs,
      minorFaults,
      phaseCpu: { ...phaseCpu, end: cpuMs },
      machineBusy: busyShare(ticks0, ticks1),
      machineBusyDelivery: busyShare(ticksDelivery0, ticksDelivery1),
      status: report.status,
      succeeded: report.succeeded.subscribe + report.succeeded.unsubscribe,
      failed: report.failed.subscribe + report.failed.unsubscribe,
      planned: report.planned,
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await keeper.close();
    rss.stop();
  }
}

/** "83%" of a share, or "?" */
function pct(share: number | null): string {
  return share === null ? "?" : `${Math.round(share * 100)}%`;
}

/** Median of the known shares, to two decimals; null if none is known. */
function medianShare(shares: (number | null)[]): number | null {
  const known = shares.filter((x): x is number => x !== null);
  return known.length ? Number(median(known).toFixed(2)) : null;
}

function phaseLine(phases: Record<string, number>): string {
  return Object.entries(phases)
    .map(([name, at]) => `${name} ${secs(at)}`)
    .join(", ");
}

/** Subscriber arrays of the model's first `rows` rows, serialised once. */
function prebuilt(rows: number): string[] {
  const out: string[] = [];
  for (let start = 0; start < rows; start += BATCH) {
    const subs = [];
    for (let i = start; i < Math.min(rows, start + BATCH); i++) {
      subs.push(
        i % 10 === 9
          ? { email: `user${i}@example.com` }
          : { email: `user${i}@example.com`, userId: `u${i}` },
      );
    }
    out.push(JSON.stringify(subs));
  }
  return out;
}

async function admin(pool: Pool, path: string, body: unknown): Promise<unknown> {
  const res = await pool.request({
    path,
    method: "POST",
    headers: { "api-key": KEY, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const json: unknown = await res.body.json();
  if (res.statusCode !== 200) throw new TypeError(`${path} answered ${res.statusCode}`);
  return json;
}

/** The ceiling: pre-built bodies posted with `concurrency` requests in flight; subscribers/s. */
async function ceiling(
  url: string,
  subscriberJson: string[],
  concurrency: number,
  round: number,
  emulatorPid: number | undefined,
) {
  const setup = new Pool(url, { connections: 1 });
  let listId: number;
  try {
    await admin(setup, "/_emulator/reset", {});
    ({ listId } = (await admin(setup, "/_emulator/lists", {
      name: `ceiling-${round}-${concurrency}`,
    })) as { listId: number });
  } finally {
    await setup.close();
  }
  // Built before the pool opens: at 10M rows this blocks the event loop for seconds, past the
  // emulator's keep-alive timeout (5 s), and a request on a connection the emulator closed in
  // the meantime meets ECONNRESET (the suspected cause of 10M benches ending that way).
  const bodies = subscriberJson.map((s) =>
    Buffer.from(`{"listId":${listId},"subscribers":${s},"updateExistingUsersOnly":false}`),
  );
  const pool = new Pool(url, { connections: concurrency, pipelining: 1 });
  try {
    const headers = { "api-key": KEY, "content-type": "application/json" };
    const emulatorCpu0 = processCpuMs(emulatorPid);
    const ticks0 = machineTicks();
    const started = performance.now();
    const succeeded = await postBodies(pool, headers, bodies, concurrency);
    const seconds = (performance.now() - started) / 1000;
    const machineBusy = busyShare(ticks0, machineTicks());
    const emulatorCpu1 = processCpuMs(emulatorPid);
    await admin(pool, "/_emulator/reset", {});
    const emulatorCpuMs =
      emulatorCpu0 !== null && emulatorCpu1 !== null ? emulatorCpu1 - emulatorCpu0 : null;
    return { rate: succeeded / seconds, succeeded, seconds, emulatorCpuMs, machineBusy };
  } finally {
    await pool.close();
  }
}

async function main(): Promise<void> {
  const rows = num(values.rows, 1_000_000);
  const runs = num(values.runs, 3);
  const changes = num(values.changes, 3);
  const w = await createBenchWarehouse("duckdb");
  const cfg = w.config as { path: string; stateSchema: string };
  const { child: emulator, first } = await spawnJson<{ url: string }>(SELF, ["--mode", "serve"]);
  if (values.pin) {
    const cpus = availableParallelism();
    if (cpus < 2 || emulator.pid === undefined) throw new TypeError("--pin needs 2 CPUs or more");
    pinProcess(emulator.pid, "0");
    pinProcess(process.pid, cpus === 2 ? "1" : `1-${cpus - 1}`);
  }
  const url = first.url;
  const pass = [...(values["memory-limit"] ? ["--memory-limit", values["memory-limit"]] : [])];
  try {
    {
      const s = await w.open();
      try {
        await generateModel(s, w.dataSchema, TABLE, rows);
      } finally {
        await s.close();
      }
    }
    const subscriberJson = prebuilt(rows);
    const c4: number[] = [];
    const c8: number[] = [];
    const ceilingEmulatorCpu: number[] = [];
    const ceilingBusy: (number | null)[] = [];
    const firsts: SyncResult[] = [];
    // --alt-node-args: the alternated rounds and their ceilings
    const altArgs = values["alt-node-args"]?.split(" ").filter(Boolean) ?? [];
    const isAlt = (r: number) => altArgs.length > 0 && r % 2 === 1;
    const alts: SyncResult[] = [];
    const altC4: number[] = [];
    let lastSync = "";
    for (let r = 0; r < runs; r++) {
      const a = await ceiling(url, subscriberJson, 4, r, emulator.pid);
      if (a.emulatorCpuMs !== null) ceilingEmulatorCpu.push(a.emulatorCpuMs);
      ceilingBusy.push(a.machineBusy);
      const b = await ceiling(url, subscriberJson, 8, r, emulator.pid);
      c8.push(b.rate);
      lastSync = `bench_first_${r}`;
      const emulatorCpu0 = processCpuMs(emulator.pid);
      const res = await runJson<SyncResult>(
        SELF,
        [
          "--mode",
          "first",
          "--db",
          cfg.path,
          "--state",
          cfg.stateSchema,
          "--url",
          url,
          "--sync",
          lastSync,
          ...pass,
        ],
        values.profile && r === 0
          ? ["--cpu-prof", "--cpu-prof-dir", values.profile]
          : isAlt(r)
            ? altArgs
            : [],
      );
      const emulatorCpu1 = processCpuMs(emulator.pid);
      if (emulatorCpu0 !== null && emulatorCpu1 !== null)
        res.emulatorCpuMs = emulatorCpu1 - emulatorCpu0;
      (isAlt(r) ? alts : firsts).push(res);
      (isAlt(r) ? altC4 : c4).push(a.rate);
      console.log(
        `round ${r + 1}${isAlt(r) ? ` (${altArgs.join(" ")})` : ""}: ceiling c4 ${Math.round(a.rate)}/s, c8 ${Math.round(b.rate)}/s; ` +
          `first sync ${res.status}: ${res.succeeded} in ${secs(res.ms)} = ${Math.round(res.succeeded / (res.ms / 1000))}/s ` +
          `(delivery ${secs(res.deliveryMs)} = ${Math.round(res.succeeded / (res.deliveryMs / 1000))}/s), ` +
          `peak RSS ${mb(res.peakRss)}, maxRSS ${mb(res.maxRss)}; CPU: sync ${secs(res.cpuMs)} (kernel ${secs(res.systemCpuMs)}, ${res.minorFaults} minor faults), emulator ${secs(res.emulatorCpuMs ?? 0)} ` +
          `(ceiling c4: emulator ${secs(a.emulatorCpuMs ?? 0)}); machine busy: ceiling c4 ${pct(a.machineBusy)}, ` +
          `first sync ${pct(res.machineBusy)} (delivery ${pct(res.machineBusyDelivery)}); phases (s from start): ${phaseLine(res.phases)}; ` +
          `CPU at phase start: ${phaseLine(res.phaseCpu)}`,
      );
    }

    const seconds: SyncResult[] = [];
    for (let k = 1; k <= changes; k++) {
      const s = await w.open();
      try {
        await applyChange(s, w.dataSchema, TABLE, rows, k);
      } finally {
        await s.close();
      }
      const res = await runJson<SyncResult>(SELF, [
        "--mode",
        "second",
        "--db",
        cfg.path,
        "--state",
        cfg.stateSchema,
        "--url",
        url,
        "--sync",
        lastSync,
        ...pass,
      ]);
      seconds.push(res);
      console.log(
        `change ${k}: plan ${secs(res.planMs ?? 0)}, second sync ${res.status} ${secs(res.ms)} ` +
          `(${res.planned.subscribe} subscribe, ${res.planned.unsubscribe} unsubscribe; delivery ${secs(res.deliveryMs)}), ` +
          `ratio ${(res.ms / (res.planMs ?? 1)).toFixed(2)}, peak RSS ${mb(res.peakRss)}; phases (s from start): ${phaseLine(res.phases)}`,
      );
    }

    const syncRate = median(firsts.map((f) => f.succeeded / (f.ms / 1000)));
    const deliveryRate = median(firsts.map((f) => f.succeeded / (f.deliveryMs / 1000)));
    const summary = {
      rows,
      runs,
      memoryLimit: values["memory-limit"] ?? null,
      pinned: values.pin === true,
      ceilingC4: Math.round(median(c4)),
      ceilingC8: Math.round(median(c8)),
      firstSyncRate: Math.round(syncRate),
      firstSyncDeliveryRate: Math.round(deliveryRate),
      firstSyncMs: Math.round(median(firsts.map((f) => f.ms))),
      ratioSyncToC4: Number((syncRate / median(c4)).toFixed(2)),
      // each round's sync against the ceiling measured just before it: steadier on a machine whose
      // speed drifts within minutes
      ratioSyncToC4PerRound: Number(
        median(firsts.map((f, i) => f.succeeded / (f.ms / 1000) / (c4[i] ?? Number.NaN))).toFixed(
          2,
        ),
      ),
      ratioSyncToC8: Number((syncRate / median(c8)).toFixed(2)),
      ratioDeliveryToC4: Number((deliveryRate / median(c4)).toFixed(2)),
      firstSyncPeakRss: Math.max(...firsts.map((f) => f.peakRss)),
      firstSyncMaxRss: Math.max(...firsts.map((f) => f.maxRss)),
      firstSyncCpuMs: Math.round(median(firsts.map((f) => f.cpuMs))),
      firstSyncEmulatorCpuMs: Math.round(median(firsts.map((f) => f.emulatorCpuMs ?? 0))),
      ceilingC4EmulatorCpuMs: Math.round(
        median(ceilingEmulatorCpu.length ? ceilingEmulatorCpu : [0]),
      ),
      // how much of the machine (all cores) was busy: the sync's own work and the emulator's share it
      machineBusyCeilingC4: medianShare(ceilingBusy),
      machineBusyFirstSync: medianShare(firsts.map((f) => f.machineBusy)),
      machineBusyFirstSyncDelivery: medianShare(firsts.map((f) => f.machineBusyDelivery)),
      secondSyncMs: Math.round(median(seconds.map((s) => s.ms))),
      secondPlanMs: Math.round(median(seconds.map((s) => s.planMs ?? 0))),
      ratioSecondToPlan: Number(median(seconds.map((s) => s.ms / (s.planMs ?? 1))).toFixed(2)),
      secondSyncPeakRss: Math.max(...seconds.map((s) => s.peakRss)),
    };
    console.log(
      `\nfirst sync of ${rows}${summary.pinned ? " (emulator pinned to CPU 0)" : ""}: ${summary.firstSyncRate}/s end to end (${summary.ratioSyncToC4}x of the c4 ceiling ${summary.ceilingC4}/s, ` +
        `median of the rounds' own ratios ${summary.ratioSyncToC4PerRound}x; ` +
        `${summary.ratioSyncToC8}x of c8 ${summary.ceilingC8}/s); delivery window ${summary.firstSyncDeliveryRate}/s (${summary.ratioDeliveryToC4}x c4); ` +
        `peak RSS ${mb(summary.firstSyncPeakRss)}; machine busy: ceiling c4 ${pct(summary.machineBusyCeilingC4)}, ` +
        `first sync ${pct(summary.machineBusyFirstSync)} (delivery ${pct(summary.machineBusyFirstSyncDelivery)}). ` +
        `Second sync (1.1% changed): ${secs(summary.secondSyncMs)} vs plan ${secs(summary.secondPlanMs)} = ${summary.ratioSecondToPlan}x`,
    );
    if (alts.length > 0) {
      const perRound = (results: SyncResult[], ceilings: number[]) =>
        median(results.map((f, i) => f.succeeded / (f.ms / 1000) / (ceilings[i] ?? Number.NaN)));
      console.log(
        `plain rounds: median ${secs(median(firsts.map((f) => f.ms)))}, per-round ratio ${perRound(firsts, c4).toFixed(2)}x; ` +
          `rounds with ${altArgs.join(" ")}: median ${secs(median(alts.map((f) => f.ms)))}, per-round ratio ${perRound(alts, altC4).toFixed(2)}x`,
      );
    }
    console.log(JSON.stringify(summary));
  } finally {
    emulator.stdin?.end();
    await w.cleanup();
  }
}
