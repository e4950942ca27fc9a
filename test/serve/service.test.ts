/**
 * The service in process, end to end: a DuckDB warehouse file, the emulator over HTTP, the API
 * over HTTP. Assertions are on what the list holds and what the API and the warehouse say.
 */
import { rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Emulator, startEmulator } from "../../src/emulator/index.js";
import { createLogger } from "../../src/scheduler/log.js";
import { type Service, startService } from "../../src/scheduler/service.js";
import { openDuckDb } from "../../src/sources/duckdb.js";
import { FakeClock } from "../scheduler/fake-clock.js";
import {
  api,
  configYaml,
  emails,
  KEY,
  listEmails,
  logCapture,
  TOKEN,
  tempDir,
  waitForRun,
  writeConfig,
  writeModel,
} from "./helpers.js";

const FAST_RETRY = { retry: { baseMs: 1, maxMs: 5, listNotFoundRetryMs: 50 } };

interface Setup {
  dir: string;
  file: string;
  source: { type: "duckdb"; path: string; stateSchema: string };
  open: () => ReturnType<typeof openDuckDb>;
}

async function warehouse(): Promise<Setup> {
  const dir = await tempDir();
  const source = {
    type: "duckdb" as const,
    path: path.join(dir, "wh.duckdb"),
    stateSchema: "state",
  };
  return {
    dir,
    file: path.join(dir, "audience-sync.yaml"),
    source,
    open: () => openDuckDb(source),
  };
}

describe("serve in process", () => {
  let emulator: Emulator;
  let w: Setup;
  let service: Service;
  const logs = logCapture();
  const model = [...emails(30), "not-an-email"];
  let yaml: string;

  beforeAll(async () => {
    emulator = await startEmulator({ port: 0, projectType: "email", apiKey: KEY });
    w = await warehouse();
    await writeModel(w.open, "main", "audience", model);
    yaml = configYaml({
      source: w.source,
      emulator,
      syncs: {
        vip: { table: "main.audience", schedule: '{ type: cron, expression: "0 6 * * *" }' },
      },
    });
    await writeConfig(w.dir, yaml);
    service = await startService({
      configFile: w.file,
      port: 0,
      token: TOKEN,
      logger: createLogger({ destination: logs.stream, level: "debug" }),
      client: FAST_RETRY,
    });
  });

  afterAll(async () => {
    await service?.stop({ timeoutMs: 5000 });
    await emulator?.close();
    await rm(w.dir, { recursive: true, force: true });
  });

  it("refuses /api without the right token, as JSON", async () => {
    for (const token of [null, "wrong-token"]) {
      const r = await api(service.url, "GET", "/api/syncs", { token });
      expect(r.status).toBe(401);
      expect(r.json).toMatchObject({ error: { code: "unauthorized" } });
    }
    const post = await api(service.url, "POST", "/api/syncs/vip/runs", { token: null });
    expect(post.status).toBe(401);
    expect(emulator.stats.requests).toBe(0);
  });

  it("answers unknown routes 404, wrong methods 405, bad bodies 400, all JSON", async () => {
    expect((await api(service.url, "GET", "/nope")).status).toBe(404);
    expect((await api(service.url, "GET", "/api/nope")).status).toBe(404);
    const unknown = await api(service.url, "GET", "/api/syncs/ghost/runs");
    expect(unknown.status).toBe(404);
    expect(unknown.json).toMatchObject({ error: { code: "not_found" } });
    const del = await api(service.url, "DELETE", "/api/syncs/vip/runs");
    expect(del.status).toBe(405);
    expect(del.headers.get("allow")).toBe("GET, POST");
    for (const body of ["{not json", '{"fullResync":"yes"}', '{"other":1}', "[1]"]) {
      const r = await api(service.url, "POST", "/api/syncs/vip/runs", { body });
      expect(r.status, body).toBe(400);
      expect(r.json).toMatchObject({ error: { code: "bad_request" } });
    }
    expect((await api(service.url, "GET", "/api/syncs/vip/runs/abc")).status).toBe(400);
    expect((await api(service.url, "GET", "/api/syncs/vip/runs?limit=0")).status).toBe(400);
    expect(emulator.stats.requests).toBe(0);
  });

  it("/healthz needs no token and says the config is loaded and the source reachable", async () => {
    const r = await api(service.url, "GET", "/healthz", { token: null });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ status: "ok", syncs: 1, sources: { wh: "ok" } });
    expect(typeof r.json.configLoadedAt).toBe("string");
  });

  it("a trigger through the API runs the sync and mirrors the list", async () => {
    const r = await api<{ runId: number; location: string }>(
      service.url,
      "POST",
      "/api/syncs/vip/runs",
    );
    expect(r.status).toBe(202);
    expect(r.json.runId).toBe(1);
    expect(r.headers.get("location")).toBe("/api/syncs/vip/runs/1");
    const run = await waitForRun(service.url, "vip", r.json.runId);
    expect(run).toMatchObject({
      runId: 1,
      status: "completed_with_failures",
      succeededSubscribe: 30,
      failedSubscribe: 1,
    });
    expect(listEmails(emulator, "list vip")).toEqual(emails(30).sort());

    const runs = await api<{ runs: { runId: number }[] }>(
      service.url,
      "GET",
      "/api/syncs/vip/runs",
    );
    expect(runs.json.runs.map((x) => x.runId)).toEqual([1]);
    const failures = await api<{ failures: { errorCode: string; email: string }[] }>(
      service.url,
      "GET",
      "/api/syncs/vip/runs/1/failures?code=invalid_email",
    );
    expect(failures.status).toBe(200);
    expect(failures.json.failures.map((f) => [f.errorCode, f.email])).toEqual([
      ["invalid_email", "not-an-email"],
    ]);
    const none = await api<{ failures: unknown[] }>(
      service.url,
      "GET",
      "/api/syncs/vip/runs/1/failures?code=user_not_found",
    );
    expect(none.json.failures).toEqual([]);
    expect(
      (await api(service.url, "GET", "/api/syncs/vip/runs/1/failures?code=bogus")).status,
    ).toBe(400);
    expect((await api(service.url, "GET", "/api/syncs/vip/runs/7")).status).toBe(404);
  });

  it("a second run sends only the change, and run ids stay readable one by one", async () => {
    await writeModel(w.open, "main", "audience", [...emails(25), "new@example.com"]);
    const r = await api<{ runId: number }>(service.url, "POST", "/api/syncs/vip/runs", {
      body: '{"fullResync": false}',
    });
    expect(r.status).toBe(202);
    const run = await waitForRun(service.url, "vip", r.json.runId);
    expect(run).toMatchObject({
      runId: 2,
      status: "succeeded",
      succeededSubscribe: 1,
      succeededUnsubscribe: 5,
    });
    expect(listEmails(emulator, "list vip")).toEqual([...emails(25), "new@example.com"].sort());
    expect((await api(service.url, "GET", "/api/syncs/vip/runs/1")).json).toMatchObject({
      runId: 1,
    });
  });

  it("/api/syncs lists every sync with its schedule, next run and last run status", async () => {
    // The run row is final before runSync returns to the scheduler: wait for the scheduler too.
    await service.scheduler.idle();
    const r = await api<{ syncs: Record<string, unknown>[] }>(service.url, "GET", "/api/syncs");
    expect(r.status).toBe(200);
    const [vip] = r.json.syncs;
    expect(vip).toMatchObject({
      name: "vip",
      schedule: { type: "cron", expression: "0 6 * * *" },
      running: null,
      lastRun: { runId: 2, status: "succeeded" },
    });
    expect(String(vip?.nextRun)).toMatch(/T06:00:00\.000Z$/);
  });

  it("/metrics counts runs, records, failures and requests to Iterable", async () => {
    const r = await fetch(`${service.url}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toMatch(/^text\/plain/);
    const text = await r.text();
    expect(text).toContain('audience_sync_runs_total{sync="vip",status="succeeded"} 1');
    expect(text).toContain(
      'audience_sync_runs_total{sync="vip",status="completed_with_failures"} 1',
    );
    expect(text).toContain(
      'audience_sync_records_total{sync="vip",operation="subscribe",outcome="succeeded"} 31',
    );
    expect(text).toContain(
      'audience_sync_records_total{sync="vip",operation="unsubscribe",outcome="succeeded"} 5',
    );
    expect(text).toContain(
      'audience_sync_record_failures_total{sync="vip",code="invalid_email"} 1',
    );
    expect(text).toMatch(
      /audience_sync_iterable_requests_total\{sync="vip",method="POST",path="\/api\/lists\/subscribe",status="200"\} \d+/,
    );
    expect(text).toContain("audience_sync_iterable_rate_limited_total");
    expect(text).toMatch(
      /audience_sync_run_duration_seconds_count\{sync="vip",status="succeeded"\} 1/,
    );
  });

  it("logs runs started and finished with counts, never the API key, token or identifiers", async () => {
    const parsed = logs.parsed();
    const finished = parsed.filter((l) => l.msg === "run finished");
    expect(finished.map((l) => [l.runId, l.status])).toEqual([
      [1, "completed_with_failures"],
      [2, "succeeded"],
    ]);
    expect(finished[0]).toMatchObject({ succeeded: { subscribe: 30 }, failed: { subscribe: 1 } });
    expect(parsed.filter((l) => l.msg === "run started")).toHaveLength(2);
    const all = logs.lines.join("\n");
    expect(all).not.toContain(KEY);
    expect(all).not.toContain(TOKEN);
    expect(all).not.toContain("@example.com");
    expect(all).not.toContain("not-an-email");
  });

  it("SIGHUP-style reload: a bad config is refused and the old one keeps running", async () => {
    await writeFile(w.file, "syncs: [not, a, map\n");
    expect(await service.reload()).toBe(false);
    expect(logs.parsed().some((l) => String(l.msg).startsWith("config reload refused"))).toBe(true);
    const still = await api<{ syncs: { name: string }[] }>(service.url, "GET", "/api/syncs");
    expect(still.json.syncs.map((s) => s.name)).toEqual(["vip"]);

    await writeModel(w.open, "main", "other", emails(3, "o"));
    await writeFile(
      w.file,
      configYaml({
        source: w.source,
        emulator,
        syncs: {
          vip: { table: "main.audience", schedule: "{ type: manual }" },
          other: { table: "main.other" },
        },
      }),
    );
    expect(await service.reload()).toBe(true);
    const after = await api<{ syncs: { name: string; nextRun: string | null }[] }>(
      service.url,
      "GET",
      "/api/syncs",
    );
    expect(after.json.syncs.map((s) => [s.name, s.nextRun])).toEqual([
      ["vip", null],
      ["other", null],
    ]);
    const r = await api<{ runId: number }>(service.url, "POST", "/api/syncs/other/runs");
    expect(r.status).toBe(202);
    await waitForRun(service.url, "other", r.json.runId);
    expect(listEmails(emulator, "list other")).toEqual(emails(3, "o").sort());
  });
});

describe("serve in process, slow Iterable", () => {
  let emulator: Emulator;
  let w: Setup;

  beforeAll(async () => {
    // every answer takes a while, so a run with many small batches stays in progress
    emulator = await startEmulator({ port: 0, projectType: "email", apiKey: KEY, latencyMs: 100 });
    w = await warehouse();
    await writeModel(w.open, "main", "audience", emails(200));
  });
  afterAll(async () => {
    await emulator?.close();
    await rm(w.dir, { recursive: true, force: true });
  });

  it("409 on a second trigger while a run is going; stop cancels it and commits what was confirmed", async () => {
    await writeConfig(
      w.dir,
      configYaml({
        source: w.source,
        emulator,
        syncs: { s: { table: "main.audience" } },
        destination: "    batchSize: 5\n    concurrency: 1",
      }),
    );
    const service = await startService({
      configFile: w.file,
      port: 0,
      token: TOKEN,
      logger: createLogger({ destination: logCapture().stream }),
      client: FAST_RETRY,
    });
    try {
      const first = await api<{ runId: number }>(service.url, "POST", "/api/syncs/s/runs");
      expect(first.status).toBe(202);
      const second = await api(service.url, "POST", "/api/syncs/s/runs");
      expect(second.status).toBe(409);
      expect(second.json).toMatchObject({ error: { code: "already_running" } });
      const syncs = await api<{ syncs: { running: { runId: number } | null }[] }>(
        service.url,
        "GET",
        "/api/syncs",
      );
      expect(syncs.json.syncs[0]?.running?.runId).toBe(first.json.runId);
      // Stop once delivery is under way: with one batch of 5 in flight at a time, a second batch
      // received means the first one's answer reached the run.
      while (emulator.stats.subscribers < 10) await new Promise((r) => setTimeout(r, 20));
    } finally {
      expect(await service.stop({ timeoutMs: 20_000 })).toEqual([]);
    }
    const s = await w.open();
    try {
      const { listRuns } = await import("../../src/state/store.js");
      const [run] = await listRuns(s, "s", 5);
      expect(run?.status).toBe("cancelled");
      // what the warehouse says was confirmed is on the list (the list may hold more: the
      // batch in flight at the stop may have been applied without its answer being read)
      const confirmed = run?.succeededSubscribe ?? -1;
      expect(confirmed).toBeGreaterThan(0);
      expect(confirmed).toBeLessThan(200);
      expect(listEmails(emulator, "list s").length).toBeGreaterThanOrEqual(confirmed);
    } finally {
      await s.close();
    }
  });
});

describe("serve in process, on a schedule", () => {
  it("runs the sync when its time comes, and the list follows the model", async () => {
    const emulator = await startEmulator({ port: 0, projectType: "email", apiKey: KEY });
    const w = await warehouse();
    const clock = new FakeClock("2024-05-01T09:58:00Z");
    await writeModel(w.open, "main", "audience", emails(12));
    await writeConfig(
      w.dir,
      configYaml({
        source: w.source,
        emulator,
        syncs: {
          s: { table: "main.audience", schedule: '{ type: basic, every: 15m, at: "00:05" }' },
        },
      }),
    );
    const service = await startService({
      configFile: w.file,
      port: 0,
      token: TOKEN,
      logger: createLogger({ destination: logCapture().stream }),
      client: FAST_RETRY,
      clock,
    });
    try {
      const before = await api<{ syncs: { nextRun: string }[] }>(service.url, "GET", "/api/syncs");
      expect(before.json.syncs[0]?.nextRun).toBe("2024-05-01T10:05:00.000Z");
      clock.advanceTo("2024-05-01T10:04:59Z");
      expect(service.scheduler.isRunning("s")).toBe(false);
      clock.advanceTo("2024-05-01T10:05:00Z");
      expect(service.scheduler.isRunning("s")).toBe(true);
      await service.scheduler.idle();
      expect(listEmails(emulator, "list s")).toEqual(emails(12).sort());
      const after = await api<{ syncs: { nextRun: string; lastRun: { status: string } }[] }>(
        service.url,
        "GET",
        "/api/syncs",
      );
      expect(after.json.syncs[0]).toMatchObject({
        nextRun: "2024-05-01T10:20:00.000Z",
        lastRun: { status: "succeeded" },
      });
    } finally {
      await service.stop({ timeoutMs: 5000 });
      await emulator.close();
      await rm(w.dir, { recursive: true, force: true });
    }
  });
});
