import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.js";
import { duckdbExec, emulator, runCli, TEST_KEY, tempDir, writeConfig } from "./helpers.js";

const SYNCS = `  vip-users:
    source: warehouse
    destination: iterable
    model: select email, user_id from vip_customers
    list: { create: { name: VIP customers } }
    identifiers: { email: email, userId: user_id }
    schedule: { type: cron, expression: "0 6 * * *" }
  newsletter:
    source: warehouse
    destination: iterable
    table: newsletter
    list: { id: LIST_ID }
    identifiers: { email: email }
    schedule: { type: basic, every: 6h, at: "06:30" }
`;

describe("audience-sync check", () => {
  let em: Emulator;
  let tmp: { dir: string; cleanup(): Promise<void> };
  let listId: number;

  beforeAll(async () => {
    em = await emulator("hybrid");
    listId = em.state.createList("Newsletter");
    tmp = await tempDir();
    await duckdbExec(
      path.join(tmp.dir, "warehouse.duckdb"),
      "create table vip_customers as select 'a@example.com' as email, 'u1' as user_id",
      "create table newsletter as select 'b@example.com' as email",
    );
  });
  afterAll(async () => {
    await em?.close();
    await tmp?.cleanup();
  });

  it("passes every item against a reachable warehouse and emulator, exit 0", async () => {
    await writeConfig(tmp.dir, {
      baseUrl: em.url,
      syncs: SYNCS.replace("LIST_ID", String(listId)),
    });
    const r = await runCli(["check"], { cwd: tmp.dir, env: { ITERABLE_API_KEY: TEST_KEY } });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("sync vip-users");
    expect(r.stdout).toContain("sync newsletter");
    expect(r.stdout).not.toContain("✗");
    expect(r.stdout.match(/✓/g)?.length).toBe(16);
    expect(r.stdout).toContain("will be created by the first run");
    expect(r.stdout).toContain(`"Newsletter" (id ${listId})`);
    expect(r.stdout).toMatch(/next run \d{4}-\d\d-\d\dT06:00:00Z/);
    expect(r.stdout).toContain("all checks passed");

    const j = await runCli(["check", "newsletter", "--json"], {
      cwd: tmp.dir,
      env: { ITERABLE_API_KEY: TEST_KEY },
    });
    expect(j.code).toBe(0);
    const report = JSON.parse(j.stdout) as {
      ok: boolean;
      syncs: { sync: string; ok: boolean; nextRun: string; items: { id: string }[] }[];
    };
    expect(report.ok).toBe(true);
    expect(report.syncs.map((s) => s.sync)).toEqual(["newsletter"]);
    expect(report.syncs[0]?.nextRun).toMatch(/T(00|06|12|18):30:00\.000Z$/);
    expect(report.syncs[0]?.items.map((i) => i.id)).toEqual([
      "config",
      "projectType",
      "source",
      "state",
      "model",
      "apiKey",
      "list",
      "schedule",
    ]);
  });

  it("a refused key fails the key item with its fix, exit 1, and never prints the key", async () => {
    await writeConfig(tmp.dir, {
      baseUrl: em.url,
      syncs: SYNCS.replace("LIST_ID", String(listId)),
    });
    const wrong = "wrong-key-zyxwvutsrqponm";
    const r = await runCli(["check", "vip-users"], {
      cwd: tmp.dir,
      env: { ITERABLE_API_KEY: wrong },
    });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      /✗ API key of destination "iterable" is valid\s+the API key was refused/,
    );
    expect(r.stdout).toContain("fix: put a server-side API key");
    expect(r.stdout).toContain("- list");
    expect(`${r.stdout}${r.stderr}`).not.toContain(wrong);
    // the warehouse side still passes
    expect(r.stdout).toMatch(/✓ model runs and has the mapped columns/);
  });

  it("a mapped column the model lacks is named with its path, exit 1", async () => {
    await writeConfig(tmp.dir, {
      baseUrl: em.url,
      syncs: SYNCS.replace("LIST_ID", String(listId)).replace("userId: user_id", "userId: uid"),
    });
    const r = await runCli(["check", "vip-users", "--json"], {
      cwd: tmp.dir,
      env: { ITERABLE_API_KEY: TEST_KEY },
    });
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as {
      ok: boolean;
      syncs: { items: { id: string; status: string; detail: string; fix?: string }[] }[];
    };
    expect(report.ok).toBe(false);
    const model = report.syncs[0]?.items.find((i) => i.id === "model");
    expect(model?.status).toBe("fail");
    expect(model?.detail).toContain("syncs.vip-users.identifiers.userId");
    expect(model?.detail).toContain('column "uid" not in model');
    expect(model?.fix).toContain("syncs.vip-users.identifiers");
  });

  it("a list id the project lacks and a missing DuckDB file each fail with a fix", async () => {
    await writeConfig(tmp.dir, {
      baseUrl: em.url,
      duckdb: "./nowhere.duckdb",
      syncs: SYNCS.replace("LIST_ID", "999999"),
    });
    const r = await runCli(["check", "newsletter"], {
      cwd: tmp.dir,
      env: { ITERABLE_API_KEY: TEST_KEY },
    });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('✗ source "warehouse" is reachable');
    expect(r.stdout).toContain("no DuckDB file at");
    expect(r.stdout).toContain("✗ list 999999 exists");
    expect(r.stdout).toContain("fix: set syncs.newsletter.list.id");
    expect(r.stdout).toContain("2 problems found");
  });

  it("a config error exits 2 with the path", async () => {
    await writeConfig(tmp.dir, {
      baseUrl: em.url,
      syncs: SYNCS.replace("LIST_ID", String(listId)).replace("type: cron", "type: hourly"),
    });
    const r = await runCli(["check"], { cwd: tmp.dir, env: { ITERABLE_API_KEY: TEST_KEY } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("syncs.vip-users.schedule");
  });
});
