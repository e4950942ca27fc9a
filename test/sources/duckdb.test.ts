import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CancelledError, SourceError } from "../../src/errors.js";
import { lockHolder } from "../../src/sources/duckdb.js";
import { modelSql, openSource } from "../../src/sources/index.js";

const repo = path.resolve(import.meta.dirname, "../..");

/** A separate process that opens `file` with DuckDB and keeps it open until killed. */
async function holdFile(file: string): Promise<ChildProcess> {
  const script = `
    const { DuckDBInstance } = require("@duckdb/node-api");
    DuckDBInstance.create(process.argv[1]).then(async (db) => {
      await db.connect();
      process.stdout.write("ready\\n");
      setInterval(() => {}, 1000);
    }, (e) => { process.stdout.write("failed " + e.message + "\\n"); process.exit(1); });
  `;
  const child = spawn(process.execPath, ["-e", script, file], {
    cwd: repo,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const [line] = (await once(child.stdout as NodeJS.ReadableStream, "data")) as [Buffer];
  if (!line.toString().startsWith("ready"))
    throw new Error(`holder did not open the file: ${line}`);
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGKILL");
  await exited;
}

describe("duckdb source", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "as-duckdb-"));
  });

  it("creates the file and its parent directories", async () => {
    const file = path.join(dir, "a", "b", "w.duckdb");
    const source = await openSource({ type: "duckdb", path: file, stateSchema: "audience_sync" });
    await source.ensureSchema("audience_sync");
    await source.close();
    expect((await stat(file)).isFile()).toBe(true);
  });

  it("waits for a file another process holds, then says who holds it", async () => {
    const file = path.join(dir, "busy.duckdb");
    const holder = await holdFile(file);
    try {
      const err = await openSource(
        { type: "duckdb", path: file, stateSchema: "s" },
        { busyTimeoutMs: 300 },
      ).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SourceError);
      const message = (err as Error).message;
      expect(message).toContain(file);
      expect(message).toMatch(/busy/);
      expect(message).toContain(`PID ${holder.pid}`);
      expect((err as SourceError).retryable).toBe(true);
    } finally {
      await stop(holder);
    }
    // Once the holder is gone the file opens.
    const source = await openSource(
      { type: "duckdb", path: file, stateSchema: "s" },
      { busyTimeoutMs: 5_000 },
    );
    await source.close();
  });

  it("stops waiting for a busy file when aborted", async () => {
    const file = path.join(dir, "busy2.duckdb");
    const holder = await holdFile(file);
    try {
      const controller = new AbortController();
      const opening = openSource(
        { type: "duckdb", path: file, stateSchema: "s" },
        { busyTimeoutMs: 60_000, signal: controller.signal },
      ).catch((e: unknown) => e);
      setTimeout(() => controller.abort(), 100);
      expect(await opening).toBeInstanceOf(CancelledError);
    } finally {
      await stop(holder);
    }
  });

  it("releases the file on close, so another process can open it between runs", async () => {
    const file = path.join(dir, "shared.duckdb");
    const a = await openSource({ type: "duckdb", path: file, stateSchema: "s" });
    const b = await openSource({ type: "duckdb", path: file, stateSchema: "s" });
    await a.exec("create table t as select 1 as x");
    await a.close();
    // b shares the process's instance and keeps working after a closed.
    expect(await b.query("select x from t")).toEqual([{ x: 1 }]);
    await b.close();
    const holder = await holdFile(file);
    await stop(holder);
  });

  describe("models reading files", () => {
    const cwd = process.cwd();
    afterEach(() => process.chdir(cwd));

    it("reads read_csv() paths relative to the working directory", async () => {
      await writeFile(
        path.join(dir, "users.csv"),
        "email,user_id\nA@Example.com,u1\nb@example.com,u2\n",
      );
      process.chdir(dir);
      const source = await openSource({ type: "duckdb", path: "w.duckdb", stateSchema: "s" });
      try {
        const sql = modelSql(
          { model: "select * from read_csv('users.csv') order by user_id;" },
          source.dialect,
        );
        expect(await source.describe(sql)).toEqual([
          { name: "email", type: "VARCHAR" },
          { name: "user_id", type: "VARCHAR" },
        ]);
        const rows: unknown[] = [];
        for await (const batch of source.stream(sql)) rows.push(...batch);
        expect(rows).toEqual([
          { email: "A@Example.com", user_id: "u1" },
          { email: "b@example.com", user_id: "u2" },
        ]);
      } finally {
        await source.close();
      }
    });
  });
});

describe("lockHolder", () => {
  it("names the PID, program and user of DuckDB's lock message", () => {
    expect(
      lockHolder(
        'IO Error: Could not set lock on file "/x.duckdb": Conflicting lock is held in /usr/bin/node (PID 9628) by user ana. See also https://duckdb.org/docs/stable/connect/concurrency',
      ),
    ).toBe("PID 9628 (/usr/bin/node, user ana)");
    expect(lockHolder("Conflicting lock is held in /usr/bin/python3 (PID 12). See also")).toBe(
      "PID 12 (/usr/bin/python3)",
    );
    expect(lockHolder("IO Error: something else")).toBeUndefined();
  });
});
