import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/index.js";
import { duckdbQuery, runCli, tempDir } from "./helpers.js";

describe("audience-sync demo", () => {
  let tmp: { dir: string; cleanup(): Promise<void> };
  beforeAll(async () => {
    tmp = await tempDir("as-demo-");
  });
  afterAll(async () => {
    await tmp?.cleanup();
  });

  it("runs both syncs twice in a fresh directory and leaves what it prints to look at", async () => {
    const r = await runCli(["demo", "--dir", "demo"], { cwd: tmp.dir });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const dir = path.join(tmp.dir, "demo");
    expect(r.stdout).toContain("sync vip-users: run 1 succeeded");
    expect(r.stdout).toContain("sync newsletter: run 1 succeeded");
    expect(r.stdout).toContain("sync vip-users: run 2 completed with failures");
    expect(r.stdout).toContain("sync newsletter: run 2 completed with failures");
    expect(r.stdout).toContain("invalid_user_id");
    expect(r.stdout).toContain("audience-sync -c demo/audience-sync.yaml runs vip-users");
    expect(r.stdout).toMatch(
      /ITERABLE_API_KEY=demo-[0-9a-f]+ audience-sync emulator --port \d+ --project-type hybrid --state demo\/emulator\.json/,
    );

    const runs = await duckdbQuery(
      path.join(dir, "warehouse.duckdb"),
      "select sync_name, run_id, status from audience_sync.sync_runs order by sync_name, run_id",
    );
    expect(runs).toEqual([
      { sync_name: "newsletter", run_id: 1, status: "succeeded" },
      { sync_name: "newsletter", run_id: 2, status: "completed_with_failures" },
      { sync_name: "vip-users", run_id: 1, status: "succeeded" },
      { sync_name: "vip-users", run_id: 2, status: "completed_with_failures" },
    ]);

    // The config names the key by reference only, and loads.
    const yaml = await readFile(path.join(dir, "audience-sync.yaml"), "utf8");
    expect(yaml).toContain(`apiKey: \${ITERABLE_API_KEY}`);
    expect(yaml).not.toMatch(/demo-[0-9a-f]{24}/);
    const config = parseConfig(yaml, { env: { ITERABLE_API_KEY: "x" } });
    expect(Object.keys(config.syncs)).toEqual(["vip-users", "newsletter"]);

    // The emulator's state was saved for the printed resume command.
    const state = JSON.parse(await readFile(path.join(dir, "emulator.json"), "utf8")) as {
      lists: { name: string; members: number[] }[];
    };
    const sizes = Object.fromEntries(state.lists.map((l) => [l.name, l.members.length]));
    // 2,000 + 50 added - 30 removed; 500 + 20 added - 10 opted out
    expect(sizes).toEqual({ "VIP customers": 2020, Newsletter: 510 });
  });

  it("runs again over its own directory, --json", async () => {
    const r = await runCli(["demo", "--dir", "demo", "--json"], { cwd: tmp.dir });
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as {
      ok: boolean;
      first: { sync: string; runId: number }[];
      second: { sync: string; status: string }[];
      lists: { sync: string; size: number }[];
    };
    expect(out.ok).toBe(true);
    // a fresh warehouse: run ids start again at 1
    expect(out.first.map((x) => [x.sync, x.runId])).toEqual([
      ["vip-users", 1],
      ["newsletter", 1],
    ]);
    expect(out.second.map((x) => x.status)).toEqual([
      "completed_with_failures",
      "completed_with_failures",
    ]);
    expect(out.lists.map((l) => [l.sync, l.size])).toEqual([
      ["vip-users", 2020],
      ["newsletter", 510],
    ]);
  });

  it("refuses a directory that holds other files (exit 2)", async () => {
    await writeFile(path.join(tmp.dir, "notes.txt"), "mine\n");
    const r = await runCli(["demo", "--dir", "."], { cwd: tmp.dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("is not empty");
    expect(await readFile(path.join(tmp.dir, "notes.txt"), "utf8")).toBe("mine\n");
  });
});
