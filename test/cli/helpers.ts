/**
 * Running the real CLI in a child process, the way a user or a scheduler does:
 * `node --import tsx src/cli/main.ts ARGS`, from any working directory.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { DuckDBInstance } from "@duckdb/node-api";
import { type Emulator, startEmulator } from "../../src/emulator/index.js";
import type { ProjectType } from "../../src/iterable/wire.js";

export const REPO = path.resolve(import.meta.dirname, "../..");
const MAIN = path.join(REPO, "src/cli/main.ts");
// An absolute loader URL, so the child finds tsx whatever its working directory.
const TSX = pathToFileURL(path.join(REPO, "node_modules/tsx/dist/loader.mjs")).href;

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** working directory (default: the repository) */
  cwd?: string;
  /** added to a clean environment (PATH, HOME, TMPDIR only; never the caller's keys) */
  env?: Record<string, string>;
  /** written to stdin, which is then closed */
  input?: string;
  /** kill the child after this long (default 60 s) */
  timeoutMs?: number;
}

/** Runs `audience-sync ARGS` and waits for it to exit. */
export async function runCli(args: readonly string[], opts: CliOptions = {}): Promise<CliResult> {
  const env: Record<string, string> = { NO_COLOR: "1" };
  for (const k of ["PATH", "HOME", "TMPDIR", "SYSTEMROOT"]) {
    const v = process.env[k];
    if (v !== undefined) env[k] = v;
  }
  Object.assign(env, opts.env);
  const child = spawn(process.execPath, ["--import", TSX, MAIN, ...args], {
    cwd: opts.cwd ?? REPO,
    env,
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    stdout += d;
  });
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    stderr += d;
  });
  child.stdin.end(opts.input ?? "");
  const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 60_000);
  try {
    const code = await new Promise<number>((resolve, reject) => {
      child.on("error", reject);
      child.on("close", (c, signal) => resolve(c ?? (signal ? 128 : 1)));
    });
    return { code, stdout, stderr };
  } finally {
    clearTimeout(timer);
  }
}

/** A fresh temp directory, removed by the returned cleanup. */
export async function tempDir(
  prefix = "as-cli-",
): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Runs SQL statements on a DuckDB file (created when absent), then closes it so the CLI can. */
export async function duckdbExec(file: string, ...statements: string[]): Promise<void> {
  const db = await DuckDBInstance.create(file);
  const conn = await db.connect();
  try {
    for (const sql of statements) await conn.run(sql);
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

/** Reads rows from a DuckDB file. */
export async function duckdbQuery(file: string, sql: string): Promise<Record<string, unknown>[]> {
  const db = await DuckDBInstance.create(file);
  const conn = await db.connect();
  try {
    const reader = await conn.runAndReadAll(sql);
    return reader.getRowObjectsJS() as Record<string, unknown>[];
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

export const TEST_KEY = "cli-test-key-0123456789abcdef";

/** An emulator on a free 127.0.0.1 port that accepts TEST_KEY. */
export async function emulator(projectType: ProjectType = "hybrid"): Promise<Emulator> {
  return await startEmulator({ port: 0, projectType, apiKey: TEST_KEY });
}

/** Writes `audience-sync.yaml` in `dir` with one DuckDB source, one destination and the given
 *  syncs (YAML text indented under `syncs:`); the key comes from ${ITERABLE_API_KEY}. */
export async function writeConfig(
  dir: string,
  opts: { baseUrl: string; projectType?: ProjectType; duckdb?: string; syncs: string },
): Promise<string> {
  const file = path.join(dir, "audience-sync.yaml");
  const text = `sources:
  warehouse:
    type: duckdb
    path: ${JSON.stringify(opts.duckdb ?? "./warehouse.duckdb")}
destinations:
  iterable:
    type: iterable
    apiKey: \${ITERABLE_API_KEY}
    projectType: ${opts.projectType ?? "hybrid"}
    baseUrl: ${opts.baseUrl}
syncs:
${opts.syncs}
`;
  await writeFile(file, text, "utf8");
  return file;
}
