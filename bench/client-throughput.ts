/**
 * End-to-end delivery rate of IterableClient.subscribe: N records streamed from a generator,
 * batched, sent with `concurrency` batches in flight and classified, against the emulator in a
 * child process. With --rate-limit the emulator throttles (429 text bodies) and the run shows how
 * the adaptive limiter settles. Prints the median of 3 rounds.
 *
 *   npx tsx bench/client-throughput.ts [--records 200000] [--concurrency 4] [--rate-limit 0]
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { startEmulator } from "../src/emulator/index.js";
import { IterableClient } from "../src/iterable/client.js";
import type { DeliveryRecord } from "../src/iterable/types.js";
import { serveUntilStdinEnds } from "./lib/child.js";

const KEY = "bench-key-0123456789";
const ROUNDS = 3;

const { values } = parseArgs({
  options: {
    serve: { type: "boolean", default: false },
    records: { type: "string", default: "200000" },
    concurrency: { type: "string", default: "4" },
    "rate-limit": { type: "string", default: "0" },
  },
});

if (values.serve) {
  const rateLimit = Number(values["rate-limit"]);
  const em = await startEmulator({
    port: 0,
    projectType: "hybrid",
    apiKey: KEY,
    ...(rateLimit > 0 ? { rateLimit } : {}),
  });
  serveUntilStdinEnds(em);
} else {
  await main();
}

async function* records(n: number): AsyncGenerator<DeliveryRecord> {
  for (let i = 0; i < n; i++)
    yield { key: String(i), email: `user${i}@example.com`, userId: `u${i}` };
}

async function main(): Promise<void> {
  const n = Number(values.records);
  const concurrency = Number(values.concurrency);
  const { child, url } = await spawnEmulator();
  try {
    const rates: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      let limited = 0;
      let requests = 0;
      const client = new IterableClient({
        apiKey: KEY,
        baseUrl: url,
        projectType: "hybrid",
        concurrency,
        retry: { maxAttempts: 20 },
        events: {
          onRequest: () => void requests++,
          onRateLimited: () => void limited++,
        },
      });
      try {
        const listId = await client.createList(`bench-${round}`);
        let succeeded = 0;
        let failed = 0;
        const started = performance.now();
        for await (const batch of client.subscribe(listId, records(n))) {
          for (const o of batch.outcomes) {
            if (o.status === "succeeded") succeeded++;
            else failed++;
          }
        }
        const seconds = (performance.now() - started) / 1000;
        if (succeeded !== n)
          throw new TypeError(`expected ${n} successes, got ${succeeded} (${failed} failed)`);
        const rate = succeeded / seconds;
        rates.push(rate);
        console.log(
          `round ${round + 1}: ${succeeded} records in ${seconds.toFixed(2)} s = ${Math.round(rate)}/s; ` +
            `${requests} requests, ${limited} answered 429, final limiter rate ${client.currentRate.toFixed(1)}/s`,
        );
      } finally {
        await client.close();
      }
    }
    rates.sort((a, b) => a - b);
    const median = rates[Math.floor(rates.length / 2)] ?? 0;
    console.log(
      `client throughput (hybrid, ${n} records, concurrency ${concurrency}, emulator rate limit ${values["rate-limit"] === "0" ? "none" : `${values["rate-limit"]}/s`}): ` +
        `${Math.round(median)} records/s (median of ${ROUNDS})`,
    );
  } finally {
    child.stdin?.end();
  }
}

async function spawnEmulator(): Promise<{ child: ChildProcess; url: string }> {
  const self = fileURLToPath(import.meta.url);
  const child = spawn(
    process.execPath,
    ["--import", "tsx", self, "--serve", "--rate-limit", String(values["rate-limit"])],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  for await (const line of lines) {
    const { url } = JSON.parse(line) as { url: string };
    return { child, url };
  }
  throw new TypeError("the emulator child exited before printing its URL");
}
