/**
 * How many subscribers a second the emulator absorbs: N pre-built 1,000-subscriber batches posted
 * to lists/subscribe with 8 requests in flight over keep-alive connections. The emulator runs in
 * a child process so the load generator does not share its core. Prints the median of 3 rounds
 * after a warm-up round, in wall-clock time and per CPU-second of the emulator process (the
 * latter does not move when other processes compete for the cores).
 *
 *   npx tsx bench/emulator-throughput.ts [--batches 300] [--concurrency 8] [--project-type hybrid]
 *     [--profile DIR]
 */

import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Pool } from "undici";
import { startEmulator } from "../src/emulator/index.js";
import { PROJECT_TYPES, type ProjectType } from "../src/iterable/wire.js";
import { postBodies } from "./lib/loader.js";

const KEY = "bench-key-0123456789";
const BATCH = 1000;
const ROUNDS = 3;

const { values } = parseArgs({
  options: {
    serve: { type: "boolean", default: false },
    batches: { type: "string", default: "300" },
    concurrency: { type: "string", default: "8" },
    "project-type": { type: "string", default: "hybrid" },
    /** Writes a CPU profile of the emulator process into this directory. */
    profile: { type: "string" },
  },
});
const projectType = values["project-type"] as ProjectType;
if (!PROJECT_TYPES.includes(projectType))
  throw new TypeError(`unknown project type ${projectType}`);

if (values.serve) {
  // Child mode: serve until the parent closes stdin; answer "cpu" with this process's CPU time.
  const em = await startEmulator({ port: 0, projectType, apiKey: KEY });
  process.stdout.write(`${JSON.stringify({ url: em.url })}\n`);
  const input = createInterface({ input: process.stdin });
  input.on("line", () => {
    const { user, system } = process.cpuUsage();
    process.stdout.write(`${JSON.stringify({ cpuMs: (user + system) / 1000 })}\n`);
  });
  input.on("close", () => {
    void em.close().then(() => process.exit(0));
  });
} else {
  await main();
}

async function main(): Promise<void> {
  const batches = Number(values.batches);
  const concurrency = Number(values.concurrency);
  const { child, url, cpuMs } = await spawnEmulator();
  const pool = new Pool(url, { connections: concurrency, pipelining: 1 });
  const headers = { "api-key": KEY, "content-type": "application/json" };
  try {
    // Subscriber arrays are serialised once; only the list id differs between rounds.
    const subscriberJson: string[] = [];
    for (let b = 0; b < batches; b++) {
      const subs = [];
      for (let i = 0; i < BATCH; i++) {
        const n = b * BATCH + i;
        subs.push(
          projectType === "email"
            ? { email: `user${n}@example.com` }
            : { email: `user${n}@example.com`, userId: `u${n}` },
        );
      }
      subscriberJson.push(JSON.stringify(subs));
    }

    const rates: number[] = [];
    const cpuRates: number[] = [];
    for (let round = -1; round < ROUNDS; round++) {
      const warmUp = round < 0;
      await admin(pool, headers, "/_emulator/reset", {});
      const { listId } = (await admin(pool, headers, "/_emulator/lists", {
        name: `bench-${round}`,
      })) as { listId: number };
      const bodies = subscriberJson.map((s) =>
        Buffer.from(`{"listId":${listId},"subscribers":${s}}`),
      );
      const cpuBefore = await cpuMs();
      const started = performance.now();
      const succeeded = await postBodies(pool, headers, bodies, concurrency);
      const seconds = (performance.now() - started) / 1000;
      const cpuSeconds = ((await cpuMs()) - cpuBefore) / 1000;
      if (succeeded !== batches * BATCH) {
        throw new TypeError(`expected ${batches * BATCH} successes, got ${succeeded}`);
      }
      const rate = succeeded / seconds;
      const cpuRate = succeeded / cpuSeconds;
      console.log(
        `${warmUp ? "warm-up" : `round ${round + 1}`}: ${succeeded} subscribers in ` +
          `${seconds.toFixed(2)} s = ${Math.round(rate)}/s; emulator CPU ${cpuSeconds.toFixed(2)} s ` +
          `= ${Math.round(cpuRate)}/CPU-s`,
      );
      if (!warmUp) {
        rates.push(rate);
        cpuRates.push(cpuRate);
      }
    }
    console.log(
      `emulator throughput (${projectType}, ${batches} x ${BATCH} subscribers, concurrency ${concurrency}): ` +
        `${Math.round(median(rates))} subscribers/s, ${Math.round(median(cpuRates))} per emulator ` +
        `CPU-second (medians of ${ROUNDS})`,
    );
  } finally {
    await pool.close();
    child.stdin?.end();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

async function admin(
  pool: Pool,
  headers: Record<string, string>,
  path: string,
  body: unknown,
): Promise<unknown> {
  const res = await pool.request({ path, method: "POST", headers, body: JSON.stringify(body) });
  const json: unknown = await res.body.json();
  if (res.statusCode !== 200) throw new TypeError(`${path} answered ${res.statusCode}`);
  return json;
}

async function spawnEmulator(): Promise<{
  child: ChildProcess;
  url: string;
  cpuMs: () => Promise<number>;
}> {
  const self = fileURLToPath(import.meta.url);
  const child = spawn(
    process.execPath,
    [
      ...(values.profile ? ["--cpu-prof", "--cpu-prof-dir", values.profile] : []),
      "--import",
      "tsx",
      self,
      "--serve",
      "--project-type",
      projectType,
    ],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })[
    Symbol.asyncIterator
  ]();
  const nextLine = async (): Promise<string> => {
    const { value, done } = await lines.next();
    if (done) throw new TypeError("the emulator child exited");
    return value;
  };
  const { url } = JSON.parse(await nextLine()) as { url: string };
  const cpuMs = async () => {
    child.stdin?.write("cpu\n");
    return (JSON.parse(await nextLine()) as { cpuMs: number }).cpuMs;
  };
  return { child, url, cpuMs };
}
