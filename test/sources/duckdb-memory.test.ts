import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_MEMORY_LIMIT } from "../../src/sources/duckdb.js";
import { openSource, type Source } from "../../src/sources/index.js";
import { build, parseObject, refusal } from "../config/helpers.js";

/** DuckDB's memory_limit in bytes, from its text ("1.0 GiB"). */
async function limitBytes(source: Source): Promise<number> {
  const [row] = await source.query<{ v: string }>("select current_setting('memory_limit') as v");
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
      expect(DEFAULT_MEMORY_LIMIT).toBe("256MB");
      // DuckDB prints the setting rounded to a tenth of a MiB
      expect(Math.abs((await limitBytes(capped)) / 256e6 - 1)).toBeLessThan(0.001);
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
      expect(Math.abs((await limitBytes(set)) / 2 ** 30 - 1)).toBeLessThan(0.001);
    } finally {
      await set.close();
    }
  });

  it("is a size in the config; anything else is refused", () => {
    const config = parseObject(build({ source: { memoryLimit: "1GB" } }));
    expect(config.sources.warehouse).toMatchObject({ type: "duckdb", memoryLimit: "1GB" });
    expect(refusal(build({ source: { memoryLimit: "lots" } }))).toMatch(/memoryLimit/);
  });
});
