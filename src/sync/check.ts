/**
 * What `audience-sync check` verifies for each sync, in the order a run needs it: the config, the
 * project-type rules, the source, the state schema, the model's columns, the API key, the list and
 * the schedule. Every failed item carries its fix. Nothing is sent and nothing is created: the
 * list is resolved as a dry run, the state schema only gets its (idempotent) tables.
 */
import { existsSync } from "node:fs";
import {
  type Config,
  type DestinationConfig,
  getSync,
  type ResolvedSync,
  type Schedule,
  type SourceConfig,
} from "../config/index.js";
import { AuthError, ConfigError, FatalError, RetryableError, redact } from "../errors.js";
import { IterableClient } from "../iterable/client.js";
import type { ListDetails } from "../iterable/wire.js";
import { resolveColumns } from "../planner/planner.js";
import { nextRun } from "../scheduler/next.js";
import { openSource } from "../sources/index.js";
import { modelSql, type Source } from "../sources/source.js";
import { ensureState } from "../state/store.js";
import { resolveList } from "./lists.js";

export type CheckStatus = "pass" | "fail" | "skip";

export type CheckId =
  | "config"
  | "projectType"
  | "source"
  | "state"
  | "model"
  | "apiKey"
  | "list"
  | "schedule";

export interface CheckItem {
  id: CheckId;
  title: string;
  status: CheckStatus;
  /** what was found (pass) or what is wrong (fail) or why it was not tried (skip) */
  detail: string;
  /** what to change, on failures */
  fix?: string;
}

export interface SyncCheck {
  sync: string;
  ok: boolean;
  items: CheckItem[];
  /** ISO time of the next scheduled run (UTC); null for manual schedules */
  nextRun: string | null;
}

export interface CheckReport {
  ok: boolean;
  syncs: SyncCheck[];
}

/** The edges check talks to; tests may swap them, the CLI uses the defaults. */
export interface CheckDeps {
  openSource(config: SourceConfig, name: string): Promise<Source>;
  getLists(destination: DestinationConfig): Promise<ListDetails[]>;
  now(): Date;
}

const defaultDeps: CheckDeps = {
  openSource: (config, name) => openSource(config, { name, busyTimeoutMs: 2_000 }),
  getLists: async (destination) => {
    // Few attempts: check answers whether the key works now, not after a minute of backoff.
    const client = IterableClient.fromDestination(destination, {
      retry: { maxAttempts: 2, baseMs: 200, maxMs: 1_000 },
    });
    try {
      return await client.getLists();
    } finally {
      await client.close();
    }
  },
  now: () => new Date(),
};

type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

async function settle<T>(fn: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (error) {
    return { ok: false, error };
  }
}

const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** Checks the named syncs (all of them when `names` is empty) of a config that already loaded. */
export async function checkConfig(
  config: Config,
  names: readonly string[] = [],
  deps: Partial<CheckDeps> = {},
): Promise<CheckReport> {
  const d: CheckDeps = { ...defaultDeps, ...deps };
  const chosen = names.length > 0 ? [...names] : Object.keys(config.syncs);
  const resolved = chosen.map((n) => getSync(config, n));

  // Sources and destinations are shared between syncs: open and ask each once.
  const sources = new Map<string, Promise<Outcome<Source>>>();
  const lists = new Map<string, Promise<Outcome<ListDetails[]>>>();
  const sourceOf = (r: ResolvedSync) => {
    let s = sources.get(r.sync.source);
    if (!s) {
      s = settle(() => openChecked(d, r.source, r.sync.source));
      sources.set(r.sync.source, s);
    }
    return s;
  };
  const listsOf = (r: ResolvedSync) => {
    let l = lists.get(r.sync.destination);
    if (!l) {
      l = settle(() => d.getLists(r.destination));
      lists.set(r.sync.destination, l);
    }
    return l;
  };

  const syncs: SyncCheck[] = [];
  try {
    for (const r of resolved) {
      syncs.push(await checkSync(r, await sourceOf(r), await listsOf(r), d.now()));
    }
  } finally {
    for (const s of sources.values()) {
      const opened = await s;
      if (opened.ok) await opened.value.close();
    }
  }
  return { ok: syncs.every((s) => s.ok), syncs };
}

/** openSource would create a missing DuckDB file; for check that is a mistake to report. */
async function openChecked(d: CheckDeps, config: SourceConfig, name: string): Promise<Source> {
  if (config.type === "duckdb" && config.path !== ":memory:" && !existsSync(config.path)) {
    throw new ConfigError(
      `no DuckDB file at ${config.path}; fix the path (relative paths are read from the config file's directory)`,
      `sources.${name}.path`,
    );
  }
  return await d.openSource(config, name);
}

async function checkSync(
  r: ResolvedSync,
  source: Outcome<Source>,
  lists: Outcome<ListDetails[]>,
  now: Date,
): Promise<SyncCheck> {
  const { name, sync, destination } = r;
  const key = destination.apiKey;
  const items: CheckItem[] = [];
  const add = (item: CheckItem) => {
    const clean: CheckItem = { ...item, detail: redact(item.detail, key) };
    if (item.fix !== undefined) clean.fix = redact(item.fix, key);
    items.push(clean);
  };
  const skip = (id: CheckId, title: string, because: string) =>
    add({ id, title, status: "skip", detail: `not checked: ${because}` });

  add({
    id: "config",
    title: "config is valid",
    status: "pass",
    detail: "audience-sync.yaml loads",
  });
  add({
    id: "projectType",
    title: "project-type rules",
    status: "pass",
    detail: projectRules(r),
  });

  // Source, state schema, model: each needs the one before.
  let stateOk = false;
  if (!source.ok) {
    add({
      id: "source",
      title: `source "${sync.source}" is reachable`,
      status: "fail",
      detail: messageOf(source.error),
      fix: sourceFix(r),
    });
    skip("state", "state schema is writable", "the source is not reachable");
    skip("model", "model runs and has the mapped columns", "the source is not reachable");
  } else {
    add({
      id: "source",
      title: `source "${sync.source}" is reachable`,
      status: "pass",
      detail: sourceWhere(r.source),
    });
    const state = await settle(() => ensureState(source.value));
    stateOk = state.ok;
    add(
      state.ok
        ? {
            id: "state",
            title: "state schema is writable",
            status: "pass",
            detail: `schema ${source.value.stateSchema} holds sync_runs, sync_logs and snapshots`,
          }
        : {
            id: "state",
            title: "state schema is writable",
            status: "fail",
            detail: messageOf(state.error),
            fix: `let the warehouse user create schema ${r.source.stateSchema} and tables in it, or set sources.${sync.source}.stateSchema to a schema it may write`,
          },
    );
    const model = await settle(() =>
      resolveColumns(source.value, name, modelSql(sync, source.value.dialect), sync.identifiers),
    );
    add(
      model.ok
        ? {
            id: "model",
            title: "model runs and has the mapped columns",
            status: "pass",
            detail: `columns ${model.value.columns.join(", ")}; mapped ${mapped(model.value)}`,
          }
        : {
            id: "model",
            title: "model runs and has the mapped columns",
            status: "fail",
            detail: messageOf(model.error),
            fix:
              model.error instanceof ConfigError
                ? `name a column the model returns in syncs.${name}.identifiers, or add the column to the model`
                : `run ${sync.model !== undefined ? `the SQL of syncs.${name}.model` : `select * from syncs.${name}.table`} in the warehouse and fix it`,
          },
    );
  }

  // API key, then the list.
  if (!lists.ok) {
    add({
      id: "apiKey",
      title: `API key of destination "${sync.destination}" is valid`,
      status: "fail",
      detail: messageOf(lists.error),
      fix: apiKeyFix(r, lists.error),
    });
    skip("list", "list", "the API key check failed");
  } else {
    add({
      id: "apiKey",
      title: `API key of destination "${sync.destination}" is valid`,
      status: "pass",
      detail: `the project has ${lists.value.length} list${lists.value.length === 1 ? "" : "s"}`,
    });
    add(await checkList(r, lists.value, source.ok && stateOk ? source.value : null));
  }

  const schedule = scheduleItem(sync.schedule, now);
  add(schedule.item);

  // A skipped item is not a pass: what it would have checked is unknown.
  return {
    sync: name,
    ok: items.every((i) => i.status === "pass"),
    items,
    nextRun: schedule.next?.toISOString() ?? null,
  };
}

async function checkList(
  r: ResolvedSync,
  lists: ListDetails[],
  source: Source | null,
): Promise<CheckItem> {
  const { name, sync } = r;
  const list = sync.list;
  const title = "id" in list ? `list ${list.id} exists` : `list "${list.create.name}"`;
  // Without the state schema the remembered id cannot be read; the name lookup still answers.
  if (source === null) {
    if ("id" in list) {
      const found = lists.find((l) => l.id === list.id);
      return found
        ? { id: "list", title, status: "pass", detail: `"${found.name}" (id ${found.id})` }
        : listMissing(name, list.id);
    }
    const byName = lists.find((l) => l.name === list.create.name);
    return {
      id: "list",
      title,
      status: "pass",
      detail: byName
        ? `found by name: id ${byName.id}`
        : "will be created by the first run (no list of that name yet)",
    };
  }
  const api = {
    getLists: async () => lists,
    createList: async (): Promise<number> => {
      throw new FatalError("check never creates lists", "request_rejected");
    },
  };
  const found = await settle(() => resolveList(api, source, name, list, { dryRun: true }));
  if (!found.ok) {
    if ("id" in list) return listMissing(name, list.id);
    return {
      id: "list",
      title,
      status: "fail",
      detail: messageOf(found.error),
      fix: `check syncs.${name}.list`,
    };
  }
  const v = found.value;
  return {
    id: "list",
    title,
    status: "pass",
    detail: v.created
      ? "will be created by the first run (no list of that name yet)"
      : "id" in list
        ? `"${v.name}" (id ${v.id})`
        : `found: id ${v.id}`,
  };
}

function listMissing(sync: string, id: number): CheckItem {
  return {
    id: "list",
    title: `list ${id} exists`,
    status: "fail",
    detail: `list ${id} does not exist in this Iterable project`,
    fix: `set syncs.${sync}.list.id to one of the ids \`audience-sync lists\` shows, or use list: { create: { name: ... } }`,
  };
}

function projectRules(r: ResolvedSync): string {
  const { sync, destination } = r;
  const ids = [
    sync.identifiers.email !== undefined ? `email <- ${sync.identifiers.email}` : null,
    sync.identifiers.userId !== undefined ? `userId <- ${sync.identifiers.userId}` : null,
  ].filter((x) => x !== null);
  const upd =
    destination.projectType === "email"
      ? ""
      : `; updateExistingUsersOnly ${sync.updateExistingUsersOnly ? "yes" : "no"}`;
  return `${destination.projectType} project in ${destination.dataCenter}: ${ids.join(", ")}${upd}`;
}

function mapped(cols: { email?: string; userId?: string }): string {
  return (
    [
      cols.email !== undefined ? `email=${cols.email}` : null,
      cols.userId !== undefined ? `userId=${cols.userId}` : null,
    ]
      .filter((x) => x !== null)
      .join(", ") || "(nothing)"
  );
}

/** Where a source points, without its password. */
function sourceWhere(source: SourceConfig): string {
  if (source.type === "duckdb") return `duckdb ${source.path}`;
  if (source.url !== undefined) {
    try {
      const u = new URL(source.url);
      return `${source.type} ${u.hostname}${u.port ? `:${u.port}` : ""}${u.pathname}`;
    } catch {
      return source.type;
    }
  }
  return `${source.type} ${source.host ?? ""}${source.port ? `:${source.port}` : ""}/${source.database ?? ""}`;
}

function sourceFix(r: ResolvedSync): string {
  const at = `sources.${r.sync.source}`;
  if (r.source.type === "duckdb") {
    return `check ${at}.path, and that no other process holds the file open for writing`;
  }
  return `check ${at}.url (or host/port/user/password/database), that the server is up and that it accepts connections from here`;
}

function apiKeyFix(r: ResolvedSync, err: unknown): string {
  const at = `destinations.${r.sync.destination}`;
  const host = r.destination.baseUrl ? `${at}.baseUrl` : `${at}.dataCenter`;
  if (err instanceof AuthError) {
    return `put a server-side API key of this project in the environment variable ${at}.apiKey names (e.g. ITERABLE_API_KEY); a key works only in its own data centre, so check ${host} too`;
  }
  if (err instanceof RetryableError) return `check ${host} and the network`;
  return `check ${host}: does it point to the Iterable API?`;
}

function scheduleItem(schedule: Schedule, now: Date): { item: CheckItem; next: Date | null } {
  const next = nextRunAt(schedule, now);
  const title = "schedule";
  return {
    item: {
      id: "schedule",
      title,
      status: "pass",
      detail:
        next === null
          ? "manual: runs only when asked"
          : `${describeSchedule(schedule)}; next run ${next.toISOString().replace(".000Z", "Z")}`,
    },
    next,
  };
}

export function describeSchedule(schedule: Schedule): string {
  switch (schedule.type) {
    case "manual":
      return "manual";
    case "basic":
      return `every ${schedule.every}${schedule.at ? ` at ${schedule.at}` : ""} UTC`;
    case "cron":
      return `cron "${schedule.expression}" UTC`;
  }
}

/** The first scheduled time strictly after `now`, or null for manual schedules: the
 *  scheduler's own rule, so what check prints is when serve runs it. */
export function nextRunAt(schedule: Schedule, now: Date): Date | null {
  return nextRun(schedule, now);
}
