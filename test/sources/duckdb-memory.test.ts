import { execFile, execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_BULK_FLUSH_THRESHOLD, DEFAULT_MEMORY_LIMIT } from "../../src/sources/duckdb.js";
import { openSource, type Source } from "../../src/sources/index.js";
import { REPO } from "../cli/helpers.js";
import { build, parseObject, refusal } from "../config/helpers.js";

/** A size setting of DuckDB in bytes, from its text ("1.0 GiB"). */
async function settingBytes(source: Source, name = "memory_limit"): Promise<number> {
  const [row] = await source.query<{ v: string }>("select current_setting($1) as v", [name]);
  const m = /^([\d.]+)\s*(\w+)$/.exec(row?.v ?? "");
  const units: Record<string, number> = { KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30, TiB: 2 ** 40 };
  return Math.round(Number(m?.[1]) * (units[m?.[2] ?? ""] ?? Number.NaN));
}

describe("duckdb memoryLimit", () => {
  let dir: string | null = null;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = null;
  });

  it("is applied to the instance, and capped by default", async () => {
    dir = await mkdtemp(path.join(tmpdir(), "as-mem-"));
    const file = path.join(dir, "w.duckdb");
    const capped = await openSource({ type: "duckdb", path: file, stateSchema: "s" });
    try {
      expect(DEFAULT_MEMORY_LIMIT).toBe("192MB");
      // DuckDB prints the setting rounded to a tenth of a MiB
      expect(Math.abs((await settingBytes(capped)) / 192e6 - 1)).toBeLessThan(0.001);
    } finally {
      await capped.close();
    }
    const set = await openSource({
      type: "duckdb",
      path: file,
      stateSchema: "s",
      memoryLimit: "1GiB",
    });
    try {
      expect(Math.abs((await settingBytes(set)) / 2 ** 30 - 1)).toBeLessThan(0.001);
    } finally {
      await set.close();
    }
  });

  it("is a size in the config; anything else is refused", () => {
    const config = parseObject(build({ source: { memoryLimit: "1GB" } }));
    expect(config.sources.warehouse).toMatchObject({ type: "duckdb", memoryLimit: "1GB" });
    expect(refusal(build({ source: { memoryLimit: "lots" } }))).toMatch(/memoryLimit/);
  });

  it("returns the allocator's pages in the background and before large allocations", async () => {
    const source = await openSource({ type: "duckdb", path: ":memory:", stateSchema: "s" });
    try {
      const [row] = await source.query<{ v: string }>(
        "select current_setting('allocator_background_threads')::varchar as v",
      );
      expect(row?.v).toBe("true");
      expect(DEFAULT_BULK_FLUSH_THRESHOLD).toBe("16MB");
      const bytes = await settingBytes(source, "allocator_bulk_deallocation_flush_threshold");
      // printed rounded to a tenth of a MiB
      expect(Math.abs(bytes / 16e6 - 1)).toBeLessThan(0.01);
    } finally {
      await source.close();
    }
  });

  // Without the purge, the pages of this statement's hash tables stay with the process
  // (~250 MB here); with it, RSS is back within a few MB of where it started. With the threads
  // fixed, the statement runs well over PURGE_AFTER_MS on any machine (1.5-3 s on this one).
  it.each([2, 1])(
    "returns the memory a long statement freed to the OS, and keeps threads at %i",
    async (threads) => {
      const source = await openSource({ type: "duckdb", path: ":memory:", stateSchema: "s" });
      try {
        await source.exec(`SET threads = ${threads}`);
        const rss = process.memoryUsage.rss();
        const [row] = await source.query<{ n: number }>(
          "select count(distinct 'user' || i || '@example.com') as n from range(6000000) r(i)",
        );
        const grew = process.memoryUsage.rss() - rss;
        expect(row?.n).toBe(6_000_000);
        expect(grew).toBeLessThan(64 * 2 ** 20);
        const [after] = await source.query<{ t: unknown }>(
          "select current_setting('threads') as t",
        );
        expect(Number(after?.t)).toBe(threads);
      } finally {
        await source.close();
      }
    },
  );
});

describe("duckdb threads", () => {
  it("are as many as the CPUs this process may run on", async () => {
    const source = await openSource({ type: "duckdb", path: ":memory:", stateSchema: "s" });
    try {
      const [row] = await source.query<{ n: number | bigint }>(
        "select current_setting('threads')::bigint as n",
      );
      expect(Number(row?.n)).toBe(availableParallelism());
    } finally {
      await source.close();
    }
  });

  const pinnable = availableParallelism() >= 2 && hasTaskset();
  it.skipIf(!pinnable)(
    "follow the process's CPU affinity, not the machine's CPU count (taskset)",
    async () => {
      // A child held to one CPU: DuckDB alone would still count every CPU of the machine.
      const script = [
        'import { openSource } from "./src/sources/index.js";',
        'const s = await openSource({ type: "duckdb", path: ":memory:", stateSchema: "s" });',
        "const [row] = await s.query(\"select current_setting('threads')::bigint as n\");",
        "console.log(String(row.n));",
        "await s.close();",
      ].join("\n");
      const out = await new Promise<string>((resolve, reject) => {
        execFile(
          "taskset",
          ["-c", "0", process.execPath, "--import", "tsx", "--input-type=module", "-e", script],
          { cwd: REPO, timeout: 60_000 },
          (err, stdout) => (err ? reject(err) : resolve(stdout)),
        );
      });
      expect(out.trim()).toBe("1");
    },
    90_000,
  );
});

function hasTaskset(): boolean {
  try {
    execFileSync("taskset", ["-p", String(process.pid)], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
