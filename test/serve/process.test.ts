/**
 * `audience-sync serve` as a process, the way it is deployed: signals, exit codes, and several
 * processes on one warehouse. The emulator runs in the test process.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Emulator, startEmulator } from "../../src/emulator/index.js";
import { openDuckDb } from "../../src/sources/duckdb.js";
import type { Source } from "../../src/sources/source.js";
import { ensureState, listRuns, type RunRow } from "../../src/state/store.js";
import { postgresAvailable } from "../support/services.js";
import { createWarehouse, type TestWarehouse } from "../support/sources.js";
import {
  api,
  configYaml,
  emails,
  KEY,
  listEmails,
  TOKEN,
  tempDir,
  waitForRun,
  writeConfig,
  writeModel,
} from "./helpers.js";

const ROOT = path.resolve(import.meta.dirname, "../..");

interface Served {
  proc: ChildProcess;
  url: string;
  /** JSON log lines so far */
  logs: Record<string, unknown>[];
  exited: Promise<number | null>;
}

function launch(config: string, args: string[], env: Record<string, string | undefined>) {
  const proc = spawn(
    process.execPath,
    ["--import", "tsx", "src/cli/main.ts", "-c", config, "serve", ...args],
    { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] },
  );
  let stderr = "";
  proc.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) =>
    proc.once("exit", (code) => resolve(code)),
  );
  return { proc, exited, stderr: () => stderr };
}

async function serve(config: string, env: Record<string, string> = {}): Promise<Served> {
  const { proc, exited, stderr } = launch(config, ["--port", "0"], {
    AUDIENCE_SYNC_TOKEN: TOKEN,
    ...env,
  });
  const logs: Record<string, unknown>[] = [];
  const url = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: proc.stdout as NodeJS.ReadableStream });
    lines.on("line", (line) => {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (entry.msg === "listening") resolve(String(entry.url));
      } catch {
        // not a log line
      }
    });
    void exited.then((code) =>
      reject(new Error(`serve exited (${code}) before listening: ${stderr()}`)),
    );
  });
  return { proc, url, logs, exited };
}

async function terminate(s: Served): Promise<number | null> {
  s.proc.kill("SIGTERM");
  return await s.exited;
}

async function runsOf(open: () => Promise<Source>, sync: string): Promise<RunRow[]> {
  const s = await open();
  try {
    await ensureState(s);
    return await listRuns(s, sync, 100);
  } finally {
    await s.close();
  }
}

async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 20));
}

describe("serve process", () => {
  let emulator: Emulator;
  let dir: string;

  beforeAll(async () => {
    emulator = await startEmulator({ port: 0, projectType: "email", apiKey: KEY, latencyMs: 100 });
    dir = await tempDir();
  });
  afterAll(async () => {
    await emulator?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("refuses to listen beyond loopback without AUDIENCE_SYNC_TOKEN", async () => {
    const config = await writeConfig(
      dir,
      configYaml({
        source: { type: "duckdb", path: path.join(dir, "unused.duckdb") },
        emulator,
        syncs: { s: { table: "main.t" } },
      }),
    );
    const { exited, stderr } = launch(config, ["--host", "0.0.0.0", "--port", "0"], {
      AUDIENCE_SYNC_TOKEN: undefined,
    });
    expect(await exited).toBe(2);
    expect(stderr()).toMatch(/AUDIENCE_SYNC_TOKEN/);
  });

  it("SIGHUP reloads the config; a bad one is refused and the old one keeps serving", async () => {
    const source = { type: "duckdb", path: path.join(dir, "hup.duckdb"), stateSchema: "state" };
    const yaml = configYaml({ source, emulator, syncs: { s: { table: "main.t" } } });
    const config = await writeConfig(dir, yaml);
    const served = await serve(config);
    try {
      await writeFile(config, "sources: {\n");
      served.proc.kill("SIGHUP");
      await until(() => served.logs.some((l) => String(l.msg).startsWith("config reload refused")));
      const still = await api<{ syncs: { name: string }[] }>(served.url, "GET", "/api/syncs");
      expect(still.json.syncs.map((x) => x.name)).toEqual(["s"]);

      await writeFile(config, configYaml({ source, emulator, syncs: { t: { table: "main.t" } } }));
      served.proc.kill("SIGHUP");
      await until(() => served.logs.some((l) => l.msg === "config reloaded"));
      const now = await api<{ syncs: { name: string }[] }>(served.url, "GET", "/api/syncs");
      expect(now.json.syncs.map((x) => x.name)).toEqual(["t"]);
    } finally {
      expect(await terminate(served)).toBe(0);
    }
  });

  it("SIGTERM during a run stops cleanly, the warehouse stays consistent, the next run completes the list", async () => {
    const source = { type: "duckdb", path: path.join(dir, "wh.duckdb"), stateSchema: "state" };
    const open = () => openDuckDb(source);
    const all = emails(200);
    await writeModel(open, "main", "audience", all);
    const config = await writeConfig(
      dir,
      configYaml({
        source,
        emulator,
        syncs: { s: { table: "main.audience" } },
        destination: "    batchSize: 5\n    concurrency: 1",
      }),
    );

    const first = await serve(config);
    const started = await api<{ runId: number }>(first.url, "POST", "/api/syncs/s/runs");
    expect(started.status).toBe(202);
    // one batch of 5 in flight at a time: a second batch received means the first was confirmed
    await until(() => emulator.stats.subscribers >= 10);
    expect(await terminate(first)).toBe(0);
    expect(first.logs.some((l) => l.msg === "stopped")).toBe(true);

    const [cancelled] = await runsOf(open, "s");
    expect(cancelled).toMatchObject({ runId: 1, status: "cancelled" });
    const confirmed = cancelled?.succeededSubscribe ?? -1;
    expect(confirmed).toBeGreaterThan(0);
    expect(confirmed).toBeLessThan(all.length);
    expect(listEmails(emulator, "list s").length).toBeGreaterThanOrEqual(confirmed);

    const second = await serve(config);
    try {
      const again = await api<{ runId: number }>(second.url, "POST", "/api/syncs/s/runs");
      expect(again.status).toBe(202);
      const run = await waitForRun(second.url, "s", again.json.runId);
      // only what the cancelled run did not confirm is sent again
      expect(run).toMatchObject({
        runId: 2,
        status: "succeeded",
        plannedSubscribe: all.length - confirmed,
      });
      expect(listEmails(emulator, "list s")).toEqual([...all].sort());
    } finally {
      expect(await terminate(second)).toBe(0);
    }
    const runs = await runsOf(open, "s");
    expect(runs.map((r) => r.status)).toEqual(["succeeded", "cancelled"]);
  });
});

const hasPg = await postgresAvailable();

describe.skipIf(!hasPg)("two serve processes on one PostgreSQL warehouse", () => {
  let emulator: Emulator;
  let w: TestWarehouse;
  let dir: string;

  beforeAll(async () => {
    emulator = await startEmulator({ port: 0, projectType: "email", apiKey: KEY, latencyMs: 50 });
    w = await createWarehouse("postgres");
    dir = await tempDir();
  });
  afterAll(async () => {
    await emulator?.close();
    await w?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("never run one sync twice at once: one trigger wins, the other gets 409", async () => {
    const all = emails(100, "pg");
    await writeModel(w.open, w.dataSchema, "audience", all);
    // The state schema exists before both start, as after any first run.
    const s = await w.open();
    await ensureState(s);
    await s.close();
    const config = await writeConfig(
      dir,
      configYaml({
        source: w.config,
        emulator,
        syncs: { s: { table: `${w.dataSchema}.audience` } },
        destination: "    batchSize: 5\n    concurrency: 1",
      }),
    );
    const [a, b] = await Promise.all([serve(config), serve(config)]);
    try {
      const answers = await Promise.all(
        [a, b].map((p) =>
          api<{ runId?: number; error?: { code: string } }>(p.url, "POST", "/api/syncs/s/runs"),
        ),
      );
      expect(answers.map((r) => r.status).sort()).toEqual([202, 409]);
      const loser = answers.find((r) => r.status === 409);
      expect(loser?.json.error?.code).toBe("already_running");
      const winner = answers.findIndex((r) => r.status === 202);
      const url = (winner === 0 ? a : b).url;
      const run = await waitForRun(url, "s", answers[winner]?.json.runId ?? -1);
      expect(run).toMatchObject({ status: "succeeded", succeededSubscribe: all.length });
      // each subscriber reached Iterable once: no second run sent anything
      expect(emulator.stats.subscribers).toBe(all.length);
      expect(listEmails(emulator, "list s")).toEqual([...all].sort());
      expect((await runsOf(w.open, "s")).map((r) => r.runId)).toEqual([1]);
      // the loser was refused by the warehouse lock, and says so (its log may trail its answer)
      const loserLogs = (winner === 0 ? b : a).logs;
      await until(() => loserLogs.some((l) => l.msg === "skipped: running elsewhere"));
      expect(loserLogs.filter((l) => l.msg === "run started" || l.msg === "run finished")).toEqual(
        [],
      );
    } finally {
      expect(await Promise.all([terminate(a), terminate(b)])).toEqual([0, 0]);
    }
  });
});
