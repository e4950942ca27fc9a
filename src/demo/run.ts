/**
 * `audience-sync demo`: a DuckDB warehouse with a sample audience, the emulator in-process, two
 * syncs run twice with a change of audience in between. Everything lives in one directory the
 * user can inspect afterwards; the emulator's state is saved there so it can be resumed.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { type Config, loadConfig } from "../config/index.js";
import { type Emulator, type Identity, startEmulator } from "../emulator/index.js";
import { ConfigError } from "../errors.js";
import { openSource } from "../sources/index.js";
import type { RunReport } from "../sync/run.js";
import { configYaml } from "./config-yaml.js";
import { DEMO_MODELS, initialAudienceSql, secondRoundSql } from "./data.js";

export const DEMO_SYNCS = ["vip-users", "newsletter"] as const;
export const DEMO_FILES = {
  config: "audience-sync.yaml",
  warehouse: "warehouse.duckdb",
  emulatorState: "emulator.json",
  /** marks a directory the demo made, so a second demo may clear it */
  marker: ".audience-sync-demo",
} as const;
const KEY_VARIABLE = "ITERABLE_API_KEY";
const STATE_SCHEMA = "audience_sync";

export interface DemoOptions {
  dir: string;
  /** runs one sync of a loaded config and returns its report, also when the run failed */
  runSync(config: Config, name: string): Promise<RunReport>;
  /** called at each step, for the terminal */
  onStep?(step: DemoStep): void;
  /** leave the emulator running (the caller closes it) */
  keepEmulator?: boolean;
}

export type DemoStep =
  | { kind: "prepared"; dir: string; url: string }
  | { kind: "synced"; round: 1 | 2; report: RunReport }
  | { kind: "changed" };

export interface DemoList {
  sync: string;
  id: number;
  name: string;
  size: number;
  /** a few members, in list order */
  sample: Identity[];
}

export interface DemoResult {
  dir: string;
  configPath: string;
  warehousePath: string;
  emulatorStatePath: string;
  apiKeyVariable: string;
  apiKey: string;
  emulatorUrl: string;
  emulatorPort: number;
  first: RunReport[];
  second: RunReport[];
  lists: DemoList[];
  /** set when keepEmulator asked for it */
  emulator: Emulator | null;
}

/** Refuses a directory with other people's files; clears what an earlier demo left. */
async function prepareDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const entries = await readdir(dir);
  if (entries.length > 0 && !entries.includes(DEMO_FILES.marker)) {
    throw new ConfigError(
      `${dir} exists and is not empty; the demo needs a directory of its own: pass --dir to another path`,
    );
  }
  for (const name of entries) await rm(path.join(dir, name), { recursive: true, force: true });
  await writeFile(
    path.join(dir, DEMO_FILES.marker),
    "made by audience-sync demo; running the demo again clears this directory\n",
  );
}

/** The demo's audience-sync.yaml as a plain object (every setting spelt out, to learn from). */
export function demoConfig(baseUrl: string): Record<string, unknown> {
  const observability = {
    retainSyncLogs: true,
    syncLogRetentionDays: 7,
    snapshotRetention: 2,
    retryFailedRecords: true,
  };
  return {
    sources: {
      warehouse: { type: "duckdb", path: `./${DEMO_FILES.warehouse}`, stateSchema: STATE_SCHEMA },
    },
    destinations: {
      iterable: {
        type: "iterable",
        apiKey: `\${${KEY_VARIABLE}}`,
        dataCenter: "US",
        projectType: "hybrid",
        baseUrl,
      },
    },
    syncs: {
      "vip-users": {
        source: "warehouse",
        destination: "iterable",
        model: DEMO_MODELS["vip-users"],
        list: { create: { name: "VIP customers", description: "Demo: lifetime value over 1k" } },
        identifiers: { email: "email", userId: "user_id" },
        updateExistingUsersOnly: false,
        mode: "mirror",
        schedule: { type: "cron", expression: "0 6 * * *" },
        observability,
      },
      newsletter: {
        source: "warehouse",
        destination: "iterable",
        model: DEMO_MODELS.newsletter,
        list: { create: { name: "Newsletter" } },
        identifiers: { email: "email" },
        schedule: { type: "basic", every: "6h", at: "06:30" },
        observability,
      },
    },
  };
}

const HEADER = `Written by \`audience-sync demo\`. The API key comes from the environment
(\${${KEY_VARIABLE}}); baseUrl points at the local emulator the demo started.
Reference of every setting: docs/config.md.`;

export async function runDemo(opts: DemoOptions): Promise<DemoResult> {
  const dir = path.resolve(opts.dir);
  await prepareDir(dir);
  const configPath = path.join(dir, DEMO_FILES.config);
  const warehousePath = path.join(dir, DEMO_FILES.warehouse);
  const emulatorStatePath = path.join(dir, DEMO_FILES.emulatorState);
  // A throwaway key: the emulator accepts only it, and it is never a real Iterable key.
  const apiKey = `demo-${randomBytes(12).toString("hex")}`;

  const emulator = await startEmulator({
    host: "127.0.0.1",
    port: 0,
    projectType: "hybrid",
    apiKey,
    statePath: emulatorStatePath,
  });
  let keep = false;
  try {
    await writeFile(configPath, configYaml(demoConfig(emulator.url), HEADER), "utf8");
    await warehouseExec(warehousePath, initialAudienceSql());
    const config = await loadConfig(configPath, {
      env: { ...process.env, [KEY_VARIABLE]: apiKey },
    });
    opts.onStep?.({ kind: "prepared", dir, url: emulator.url });

    const first: RunReport[] = [];
    for (const name of DEMO_SYNCS) {
      const report = await opts.runSync(config, name);
      first.push(report);
      opts.onStep?.({ kind: "synced", round: 1, report });
    }
    await warehouseExec(warehousePath, secondRoundSql());
    opts.onStep?.({ kind: "changed" });
    const second: RunReport[] = [];
    for (const name of DEMO_SYNCS) {
      const report = await opts.runSync(config, name);
      second.push(report);
      opts.onStep?.({ kind: "synced", round: 2, report });
    }

    const lists: DemoList[] = [];
    for (const r of second) {
      if (!r.list || !emulator.state.hasList(r.list.id)) continue;
      lists.push({
        sync: r.sync,
        id: r.list.id,
        name: r.list.name,
        size: emulator.state.listSize(r.list.id),
        sample: emulator.state.members(r.list.id).slice(0, 3),
      });
    }
    keep = opts.keepEmulator === true;
    return {
      dir,
      configPath,
      warehousePath,
      emulatorStatePath,
      apiKeyVariable: KEY_VARIABLE,
      apiKey,
      emulatorUrl: emulator.url,
      emulatorPort: emulator.port,
      first,
      second,
      lists,
      emulator: keep ? emulator : null,
    };
  } finally {
    // close() also writes emulator.json, which the printed emulator command resumes from.
    if (!keep) await emulator.close();
  }
}

/** Runs statements on the demo's DuckDB file and closes it, so runs can open it after. */
async function warehouseExec(file: string, statements: string[]): Promise<void> {
  const source = await openSource(
    { type: "duckdb", path: file, stateSchema: STATE_SCHEMA },
    { name: "warehouse" },
  );
  try {
    for (const sql of statements) await source.exec(sql);
  } finally {
    await source.close();
  }
}
