/**
 * The sync commands as a user runs them: the real CLI in a child process, a DuckDB file (and the
 * PostgreSQL/MariaDB servers where reachable) and the emulator; assertions on exit codes, on
 * stdout, and on what the list holds.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.js";
import {
  availableDialects,
  createWarehouse,
  type TestWarehouse,
  writeTable,
} from "../support/sources.js";
import { emulator, runCli, TEST_KEY, tempDir } from "./helpers.js";

const dialects = await availableDialects();
const env = { ITERABLE_API_KEY: TEST_KEY };

describe.each(dialects)("sync commands on %s", (dialect) => {
  let w: TestWarehouse;
  let emu: Emulator;
  let dir: { dir: string; cleanup(): Promise<void> };
  let config: string;

  beforeAll(async () => {
    w = await createWarehouse(dialect);
    emu = await emulator("hybrid");
    dir = await tempDir();
    config = path.join(dir.dir, "audience-sync.yaml");
    const { writeFile } = await import("node:fs/promises");
    await writeFile(
      config,
      `sources:
  warehouse: ${JSON.stringify(w.config)}
destinations:
  iterable:
    type: iterable
    apiKey: \${ITERABLE_API_KEY}
    projectType: hybrid
    baseUrl: ${emu.url}
syncs:
  vip:
    source: warehouse
    destination: iterable
    table: ${w.dataSchema}.vip
    list: { create: { name: VIP } }
    identifiers: { email: email, userId: user_id }
  news:
    source: warehouse
    destination: iterable
    model: select email from ${w.dataSchema}.vip where user_id is null -- trailing comment
    list: { create: { name: News } }
    identifiers: { email: email }
`,
    );
  });
  afterAll(async () => {
    await emu?.close();
    await dir?.cleanup();
    await w?.cleanup();
  });

  async function model(rows: (string | null)[][]) {
    const s = await w.open();
    try {
      await writeTable(s, w.dataSchema, "vip", ["email", "user_id"], rows);
    } finally {
      await s.close();
    }
  }

  const cli = (...args: string[]) => runCli(["-c", config, ...args], { env });
  const members = (name: string) => {
    const list = emu.state.lists().find((l) => l.name === name);
    return list
      ? emu.state
          .members(list.id)
          .map((m) => m.userId ?? m.email)
          .sort()
      : [];
  };

  it("plan is a dry run: counts and samples, nothing sent, no run recorded", async () => {
    await model([
      ["a@example.com", "a1"],
      ["b@example.com", null],
      ["not an email", null],
    ]);
    const before = emu.stats.requests;
    const res = await cli("plan", "vip", "--json");
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const plan = JSON.parse(res.stdout);
    expect(plan).toMatchObject({
      rowsRead: 3,
      toSubscribe: 2,
      toUnsubscribe: 0,
      invalidRows: 1,
      invalidByCode: { invalid_email: 1 },
    });
    expect(plan.list.willBeCreated).toBe(true);
    expect(emu.stats.byPath["/api/lists/subscribe"] ?? 0).toBe(0);
    expect(emu.state.lists()).toHaveLength(0);
    expect(emu.stats.requests - before).toBe(1); // GET /api/lists only
    const runs = await cli("runs", "vip", "--json");
    expect(JSON.parse(runs.stdout)).toEqual([]);
  });

  it("sync --json: one JSON report on stdout, exit 3 with failed records, the list mirrors the model", async () => {
    const res = await cli("sync", "vip", "--json");
    expect(res.code, res.stdout + res.stderr).toBe(3);
    const report = JSON.parse(res.stdout);
    expect(report).toMatchObject({
      sync: "vip",
      status: "completed_with_failures",
      failuresByCode: { invalid_email: 1 },
    });
    expect(members("VIP")).toEqual(["a1", "b@example.com"]);
    const failures = await cli("failures", "vip", "--json");
    expect(failures.code).toBe(0);
    expect(JSON.parse(failures.stdout)).toEqual([
      expect.objectContaining({
        operation: "subscribe",
        errorCode: "invalid_email",
        email: "not an email",
      }),
    ]);
  });

  it("second sync after changes: exit 0 and the human report", async () => {
    await model([
      ["a@example.com", "a1"],
      ["c@example.com", "c1"],
    ]);
    const res = await cli("sync", "vip");
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toMatch(/sync vip: run 2 succeeded/);
    expect(res.stdout).toMatch(/unsubscribe\s+1 succeeded/);
    expect(members("VIP")).toEqual(["a1", "c1"]);
    const runs = await cli("runs", "vip");
    expect(runs.stdout).toMatch(/completed_with_failures/);
    expect(runs.stdout).toMatch(/succeeded/);
  });

  it("sync --all runs every sync; a model with a trailing comment works", async () => {
    await model([
      ["a@example.com", "a1"],
      ["n@example.com", null],
    ]);
    const res = await cli("sync", "--all", "--json");
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const { runs } = JSON.parse(res.stdout);
    expect(runs.map((r: { sync: string; status: string }) => `${r.sync}:${r.status}`)).toEqual([
      "vip:succeeded",
      "news:succeeded",
    ]);
    expect(members("News")).toEqual(["n@example.com"]);
  });

  it("a bad key: exit 1, the key never printed, the snapshot unchanged", async () => {
    const res = await runCli(["-c", config, "sync", "vip", "--json"], {
      env: { ITERABLE_API_KEY: "wrong-key-987654321" },
    });
    expect(res.code, res.stdout + res.stderr).toBe(1);
    expect(res.stdout + res.stderr).not.toContain("wrong-key-987654321");
    expect(JSON.parse(res.stdout).error.code).toBe("auth_failed");
    const next = await cli("plan", "vip", "--json");
    expect(JSON.parse(next.stdout)).toMatchObject({
      toSubscribe: 0,
      toUnsubscribe: 0,
      unchanged: 2,
    });
  });

  it("usage and config errors exit 2", async () => {
    expect((await cli("sync")).code).toBe(2);
    expect((await cli("sync", "nope")).code).toBe(2);
    const missing = await runCli(["-c", path.join(dir.dir, "missing.yaml"), "sync", "vip"], {
      env,
    });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/audience-sync init/);
    const noKey = await runCli(["-c", config, "sync", "vip"], { env: {} });
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toMatch(/ITERABLE_API_KEY/);
    // reading history needs the warehouse only, not the API key
    const runs = await runCli(["-c", config, "runs", "vip", "--json"], { env: {} });
    expect(runs.code, runs.stderr).toBe(0);
    expect(JSON.parse(runs.stdout).length).toBeGreaterThan(0);
    const failures = await runCli(["-c", config, "failures", "vip", "--json"], { env: {} });
    expect(failures.code, failures.stderr).toBe(0);
  });
});

describe("an unreachable warehouse", () => {
  it("fails the run with exit 1 and a message naming the setting", async () => {
    const d = await tempDir();
    try {
      const { writeFile } = await import("node:fs/promises");
      const file = path.join(d.dir, "c.yaml");
      await writeFile(
        file,
        `sources:
  pg: { type: postgres, url: "postgres://postgres:secretpw@127.0.0.1:1/test" }
destinations:
  it: { type: iterable, apiKey: "\${ITERABLE_API_KEY}", projectType: email, baseUrl: "http://127.0.0.1:9" }
syncs:
  s: { source: pg, destination: it, table: t, list: { id: 1 }, identifiers: { email: email } }
`,
      );
      const res = await runCli(["-c", file, "sync", "s", "--json"], { env });
      expect(res.code, res.stdout + res.stderr).toBe(1);
      const report = JSON.parse(res.stdout);
      expect(report.status).toBe("failed");
      expect(report.error.message).toMatch(/sources\.pg/);
      expect(res.stdout + res.stderr).not.toContain("secretpw");
    } finally {
      await d.cleanup();
    }
  });
});

describe("sync --all with one misconfigured sync", () => {
  it("runs the others, reports the config error with its path, and exits 2", async () => {
    const d = await tempDir();
    const emu = await emulator("email");
    try {
      const { writeFile } = await import("node:fs/promises");
      const file = path.join(d.dir, "c.yaml");
      await writeFile(
        file,
        `sources:
  wh: { type: duckdb, path: ./w.duckdb }
destinations:
  it: { type: iterable, apiKey: "\${ITERABLE_API_KEY}", projectType: email, baseUrl: "${emu.url}" }
syncs:
  bad: { source: wh, destination: it, model: "select 'a@example.com' as mail", list: { create: { name: Bad } }, identifiers: { email: email } }
  good: { source: wh, destination: it, model: "select 'a@example.com' as email", list: { create: { name: Good } }, identifiers: { email: email } }
`,
      );
      const res = await runCli(["-c", file, "sync", "--all", "--json"], { env });
      expect(res.code, res.stdout + res.stderr).toBe(2);
      const { runs } = JSON.parse(res.stdout);
      expect(runs[0]).toMatchObject({
        sync: "bad",
        status: "failed",
        error: { code: "config_error" },
      });
      expect(runs[0].error.message).toContain(
        'syncs.bad.identifiers.email: column "email" not in model',
      );
      expect(runs[1]).toMatchObject({ sync: "good", status: "succeeded" });
    } finally {
      await emu.close();
      await d.cleanup();
    }
  });
});
