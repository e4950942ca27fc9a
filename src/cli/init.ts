/**
 * `audience-sync init`: asks, in the order of the hosted feature's setup screens, what a sync
 * needs, writes audience-sync.yaml and runs check. The API key is never written: the file names
 * the environment variable that holds it. `--yes` takes every answer from flags, for scripts.
 */
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { confirm, input, select } from "@inquirer/prompts";
import type { Command } from "commander";
import {
  cronProblem,
  isDuration,
  loadConfig,
  parseConfig,
  type Schedule,
} from "../config/index.js";
import { configYaml } from "../demo/config-yaml.js";
import { AudienceSyncError, AuthError, ConfigError } from "../errors.js";
import { IterableClient } from "../iterable/client.js";
import {
  DATA_CENTER_HOSTS,
  type DataCenter,
  type ListDetails,
  type ProjectType,
} from "../iterable/wire.js";
import { runCheck } from "./check.js";
import { EXIT } from "./run.js";

// ---- answers and the file they make (pure) ----

export type SourceAnswer =
  | { type: "duckdb"; path: string }
  | { type: "postgres" | "mysql"; url: string };

export interface Observability {
  retainSyncLogs: boolean;
  syncLogRetentionDays: number;
  snapshotRetention: number;
  retryFailedRecords: boolean;
}

export interface InitAnswers {
  destinationName: string;
  /** name of the environment variable that holds the key */
  apiKeyEnv: string;
  dataCenter: DataCenter;
  projectType: ProjectType;
  baseUrl?: string;
  list: { id: number } | { create: { name: string; description?: string } };
  updateExistingUsersOnly: boolean;
  identifiers: { email?: string; userId?: string };
  sourceName: string;
  source: SourceAnswer;
  syncName: string;
  audience: { model: string } | { table: string };
  schedule: Schedule;
  observability: Observability;
}

export const DEFAULT_OBSERVABILITY: Observability = {
  retainSyncLogs: true,
  syncLogRetentionDays: 7,
  snapshotRetention: 2,
  retryFailedRecords: true,
};

const NAME = /^[A-Za-z0-9_-]{1,48}$/;
const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const HH_MM = /^([01]\d|2[0-3]):[0-5]\d$/;
const REFERENCE = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/;

/** The config file as a plain object, settings in the order the file documents them. */
export function configObject(a: InitAnswers): Record<string, unknown> {
  const destination: Record<string, unknown> = {
    type: "iterable",
    apiKey: `\${${a.apiKeyEnv}}`,
    dataCenter: a.dataCenter,
    projectType: a.projectType,
  };
  if (a.baseUrl) destination.baseUrl = a.baseUrl;
  const sync: Record<string, unknown> = {
    source: a.sourceName,
    destination: a.destinationName,
    ...a.audience,
    list: a.list,
    identifiers: a.identifiers,
  };
  if (a.projectType !== "email") sync.updateExistingUsersOnly = a.updateExistingUsersOnly;
  sync.mode = "mirror";
  sync.schedule = a.schedule;
  sync.observability = a.observability;
  return {
    sources: { [a.sourceName]: a.source },
    destinations: { [a.destinationName]: destination },
    syncs: { [a.syncName]: sync },
  };
}

/** `manual` | `every 6h [at 06:30]` | `cron 0 6 * * *`. */
export function parseScheduleFlag(text: string): Schedule {
  const t = text.trim();
  if (t === "manual") return { type: "manual" };
  const basic = /^every\s+(\S+)(?:\s+at\s+(\S+))?$/.exec(t);
  if (basic?.[1]) {
    const [, every, at] = basic;
    if (!isDuration(every))
      throw new ConfigError(`"${every}" is not a duration: write e.g. 30m, 6h, 1d`, "--schedule");
    if (at !== undefined && !HH_MM.test(at))
      throw new ConfigError(`"${at}" is not HH:MM (UTC)`, "--schedule");
    return at === undefined ? { type: "basic", every } : { type: "basic", every, at };
  }
  const cron = /^cron\s+(.+)$/.exec(t);
  if (cron?.[1]) {
    const expression = cron[1].trim();
    const problem = cronProblem(expression);
    if (problem) throw new ConfigError(problem, "--schedule");
    return { type: "cron", expression };
  }
  throw new ConfigError(
    `"${text}": write "manual", "every 6h at 06:30" or "cron 0 6 * * *" (UTC)`,
    "--schedule",
  );
}

/** The environment variables the file refers to, with a value that passes the schema, so the
 *  file can be validated before they are set. */
function placeholderEnv(a: InitAnswers): Record<string, string> {
  const env: Record<string, string> = { [a.apiKeyEnv]: "placeholder-api-key" };
  if (a.source.type !== "duckdb") {
    const ref = REFERENCE.exec(a.source.url);
    if (ref?.[1]) env[ref[1]] = `${a.source.type}://user:password@localhost/database`;
  }
  return env;
}

/** The YAML text, validated by the same parser `check` and `sync` use. */
export function renderConfig(a: InitAnswers): string {
  const text = configYaml(
    configObject(a),
    `Written by \`audience-sync init\`. The API key is read from $${a.apiKeyEnv}, never from this file.\nReference of every setting: docs/config.md; check it with: audience-sync check`,
  );
  parseConfig(text, { env: placeholderEnv(a) });
  return text;
}

// ---- prompts ----

/** The few prompt kinds init uses; the default asks on the terminal, tests script answers. */
export interface Prompter {
  input(q: {
    message: string;
    default?: string;
    validate?: (value: string) => true | string;
  }): Promise<string>;
  select<T>(q: {
    message: string;
    choices: { name: string; value: T; description?: string }[];
    default?: T;
  }): Promise<T>;
  confirm(q: { message: string; default?: boolean }): Promise<boolean>;
}

export const terminalPrompter: Prompter = {
  input: (q) => input(q),
  select: (q) => select(q),
  confirm: (q) => confirm(q),
};

export interface InitContext {
  prompter: Prompter;
  env: Readonly<Record<string, string | undefined>>;
  /** answers given as flags: used as the defaults of their questions */
  defaults: Partial<InitAnswers>;
  /** where messages between questions go */
  say(line: string): void;
  getLists?(apiKey: string, baseUrl: string, projectType: ProjectType): Promise<ListDetails[]>;
}

async function fetchLists(
  apiKey: string,
  baseUrl: string,
  projectType: ProjectType,
): Promise<ListDetails[]> {
  const client = new IterableClient({
    apiKey,
    baseUrl,
    projectType,
    retry: { maxAttempts: 2, baseMs: 200, maxMs: 1_000 },
  });
  try {
    return await client.getLists();
  } finally {
    await client.close();
  }
}

const required = (what: string) => (v: string) => v.trim() !== "" || `${what} is required`;
const nameRule = (v: string) => NAME.test(v) || "use letters, digits, - and _ (at most 48)";

/** Asks every question, in the order of the seed's setup. */
export async function askAnswers(ctx: InitContext): Promise<InitAnswers> {
  const p = ctx.prompter;
  const d = ctx.defaults;

  const destinationName = await p.input({
    message: "Destination name (how syncs refer to this Iterable project)",
    default: d.destinationName ?? "iterable",
    validate: nameRule,
  });
  const apiKeyEnv = await p.input({
    message: "Environment variable that holds the Iterable server-side API key",
    default: d.apiKeyEnv ?? "ITERABLE_API_KEY",
    validate: (v) => VAR_NAME.test(v) || "a variable name: letters, digits and _",
  });
  const dataCenter = await p.select<DataCenter>({
    message: "Data center",
    choices: [
      { name: "US (api.iterable.com)", value: "US" },
      { name: "EU (api.eu.iterable.com)", value: "EU" },
    ],
    default: d.dataCenter ?? "US",
  });
  const projectType = await p.select<ProjectType>({
    message: "Project type (Iterable: Settings, Project settings)",
    choices: [
      ...(dataCenter === "EU" ? [] : [{ name: "Email-based", value: "email" as const }]),
      { name: "User ID-based", value: "userId" },
      { name: "Hybrid", value: "hybrid" },
    ],
    default: d.projectType ?? "hybrid",
  });
  if (dataCenter === "EU")
    ctx.say("(EU projects cannot be email-based, so that choice is not offered)");
  const baseUrl = d.baseUrl;
  const list = await askList(ctx, apiKeyEnv, baseUrl ?? DATA_CENTER_HOSTS[dataCenter], projectType);

  const updateExistingUsersOnly =
    projectType === "email"
      ? false
      : await p.confirm({
          message:
            "Update existing users only? (rows Iterable does not know become failed records instead of new users)",
          default: d.updateExistingUsersOnly ?? false,
        });

  const identifiers: InitAnswers["identifiers"] = {};
  if (projectType !== "userId") {
    const email = await p.input({
      message:
        projectType === "hybrid"
          ? "Column holding the email (empty if the model has none)"
          : "Column holding the email",
      default: d.identifiers?.email ?? "email",
      ...(projectType === "email" ? { validate: required("the email column") } : {}),
    });
    if (email.trim() !== "") identifiers.email = email.trim();
  }
  if (projectType !== "email") {
    const userId = await p.input({
      message:
        projectType === "hybrid"
          ? "Column holding the userId (empty if the model has none)"
          : "Column holding the userId",
      default: d.identifiers?.userId ?? "user_id",
      validate:
        projectType === "hybrid" && identifiers.email === undefined
          ? required("at least one identifier column")
          : projectType === "userId"
            ? required("the userId column")
            : () => true,
    });
    if (userId.trim() !== "") identifiers.userId = userId.trim();
  }

  const source = await askSource(ctx);
  const syncName = await p.input({
    message: "Sync name",
    default: d.syncName ?? defaultSyncName(list),
    validate: nameRule,
  });
  const kind = await p.select<"model" | "table">({
    message: "The audience is",
    choices: [
      { name: "a SQL query", value: "model" },
      { name: "a table or view", value: "table" },
    ],
    default: d.audience && "table" in d.audience ? "table" : "model",
  });
  const audience: InitAnswers["audience"] =
    kind === "model"
      ? {
          model: await p.input({
            message: "SQL query (its rows are the audience)",
            ...(d.audience && "model" in d.audience ? { default: d.audience.model } : {}),
            validate: required("the query"),
          }),
        }
      : {
          table: await p.input({
            message: 'Table ("schema.table" or "table")',
            ...(d.audience && "table" in d.audience ? { default: d.audience.table } : {}),
            validate: (v) =>
              /^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$/.test(v) ||
              'write "schema.table" or "table"',
          }),
        };

  const schedule = await askSchedule(ctx);
  const observability = await askObservability(ctx);
  return {
    destinationName,
    apiKeyEnv,
    dataCenter,
    projectType,
    ...(baseUrl ? { baseUrl } : {}),
    list,
    updateExistingUsersOnly,
    identifiers,
    sourceName: d.sourceName ?? "warehouse",
    source,
    syncName,
    audience,
    schedule,
    observability,
  };
}

function defaultSyncName(list: InitAnswers["list"]): string {
  if ("id" in list) return `list-${list.id}`;
  const slug = list.create.name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 48);
  return slug || "audience";
}

type ListChoice = { kind: "id"; id: number } | { kind: "refresh" } | { kind: "create" };

async function askList(
  ctx: InitContext,
  apiKeyEnv: string,
  baseUrl: string,
  projectType: ProjectType,
): Promise<InitAnswers["list"]> {
  const p = ctx.prompter;
  const key = ctx.env[apiKeyEnv];
  const getLists = ctx.getLists ?? fetchLists;
  let lists: ListDetails[] | null = null;
  if (key) {
    for (;;) {
      try {
        lists = (await getLists(key, baseUrl, projectType)).filter(
          (l) => l.listType === undefined || l.listType === "Standard",
        );
        ctx.say(`The key in $${apiKeyEnv} works: ${lists.length} static list(s) in the project.`);
      } catch (err) {
        const why =
          err instanceof AuthError
            ? `the key in $${apiKeyEnv} was refused; check that it is a server-side key of this project and data center`
            : `could not fetch the lists (${err instanceof AudienceSyncError ? err.message : String(err)})`;
        ctx.say(why);
        lists = null;
      }
      if (lists === null) break;
      const choice = await p.select<ListChoice>({
        message: "List (the sync subscribes and unsubscribes its members)",
        choices: [
          ...lists.map((l) => ({
            name: `${l.name} (id ${l.id})`,
            value: { kind: "id" as const, id: l.id },
          })),
          { name: "↻ refresh the lists", value: { kind: "refresh" } },
          { name: "+ create a new list", value: { kind: "create" } },
        ],
      });
      if (choice.kind === "refresh") continue;
      if (choice.kind === "id") return { id: choice.id };
      return await askNewList(p, ctx.defaults);
    }
  } else {
    ctx.say(
      `$${apiKeyEnv} is not set, so the lists cannot be fetched; export it to pick from them (audience-sync check verifies the key later).`,
    );
  }
  const how = await p.select<"id" | "create">({
    message: "List",
    choices: [
      { name: "use an existing list (by id)", value: "id" },
      { name: "create a new list", value: "create" },
    ],
    default: ctx.defaults.list && "id" in ctx.defaults.list ? "id" : "create",
  });
  if (how === "create") return await askNewList(p, ctx.defaults);
  const id = await p.input({
    message: "List id (Iterable: Audience, Lists; or audience-sync lists)",
    ...(ctx.defaults.list && "id" in ctx.defaults.list
      ? { default: String(ctx.defaults.list.id) }
      : {}),
    validate: (v) => /^[1-9]\d*$/.test(v.trim()) || "a list id is a positive number",
  });
  return { id: Number(id.trim()) };
}

async function askNewList(p: Prompter, d: Partial<InitAnswers>): Promise<InitAnswers["list"]> {
  const given = d.list && "create" in d.list ? d.list.create : undefined;
  const name = await p.input({
    message: "New list name",
    ...(given ? { default: given.name } : {}),
    validate: required("the name"),
  });
  const description = await p.input({
    message: "Description (optional)",
    default: given?.description ?? "",
  });
  return {
    create: description.trim()
      ? { name: name.trim(), description: description.trim() }
      : { name: name.trim() },
  };
}

async function askSource(ctx: InitContext): Promise<SourceAnswer> {
  const p = ctx.prompter;
  const d = ctx.defaults.source;
  const type = await p.select<SourceAnswer["type"]>({
    message: "Warehouse",
    choices: [
      { name: "DuckDB file", value: "duckdb" },
      { name: "PostgreSQL", value: "postgres" },
      { name: "MySQL / MariaDB", value: "mysql" },
    ],
    default: d?.type ?? "duckdb",
  });
  if (type === "duckdb") {
    const path = await p.input({
      message: "DuckDB file (relative to the config file)",
      default: d?.type === "duckdb" ? d.path : "./warehouse.duckdb",
      validate: required("the path"),
    });
    return { type, path };
  }
  const scheme = type === "postgres" ? "postgres" : "mysql";
  const fromEnv = await p.confirm({
    message:
      "Read the connection URL from an environment variable? (keeps the password out of the file)",
    default: true,
  });
  if (fromEnv) {
    const name = await p.input({
      message: "Environment variable holding the URL",
      default: "DATABASE_URL",
      validate: (v) => VAR_NAME.test(v) || "a variable name: letters, digits and _",
    });
    return { type, url: `\${${name}}` };
  }
  const url = await p.input({
    message: `Connection URL (${scheme}://user:password@host:port/database)`,
    ...(d && d.type !== "duckdb" ? { default: d.url } : {}),
    validate: (v) =>
      v.startsWith(`${scheme}://`) ||
      (type === "postgres" && v.startsWith("postgresql://")) ||
      `must start with ${scheme}://`,
  });
  return { type, url };
}

async function askSchedule(ctx: InitContext): Promise<Schedule> {
  const p = ctx.prompter;
  const d = ctx.defaults.schedule;
  const type = await p.select<Schedule["type"]>({
    message: "Schedule (used by audience-sync serve; UTC)",
    choices: [
      { name: "Manual: runs only when asked", value: "manual" },
      { name: "Basic: every interval, from a time of day", value: "basic" },
      { name: "CRON expression", value: "cron" },
    ],
    default: d?.type ?? "manual",
  });
  if (type === "manual") return { type };
  if (type === "basic") {
    const every = await p.input({
      message: "Every (5m to 24h, e.g. 30m, 6h, 1d)",
      default: d?.type === "basic" ? d.every : "6h",
      validate: (v) => {
        if (!isDuration(v)) return 'write e.g. "30m", "6h", "1d"';
        try {
          parseScheduleFlag(`every ${v}`);
          return true;
        } catch (err) {
          return err instanceof Error ? err.message : String(err);
        }
      },
    });
    const at = await p.input({
      message: "At (UTC time of day HH:MM the intervals count from; empty for midnight)",
      default: d?.type === "basic" ? (d.at ?? "") : "",
      validate: (v) => v === "" || HH_MM.test(v) || 'write "HH:MM", e.g. 06:30',
    });
    return at === "" ? { type, every } : { type, every, at };
  }
  const expression = await p.input({
    message: "CRON expression (minute hour day month weekday, UTC)",
    default: d?.type === "cron" ? d.expression : "0 6 * * *",
    validate: (v) => cronProblem(v) ?? true,
  });
  return { type, expression };
}

async function askObservability(ctx: InitContext): Promise<Observability> {
  const p = ctx.prompter;
  const d = ctx.defaults.observability ?? DEFAULT_OBSERVABILITY;
  const positive = (v: string) => /^[1-9]\d*$/.test(v.trim()) || "a whole number, at least 1";
  const retainSyncLogs = await p.confirm({
    message: "Retain sync logs in the warehouse (one row per record sent or failed)?",
    default: d.retainSyncLogs,
  });
  const syncLogRetentionDays = retainSyncLogs
    ? Number(
        await p.input({
          message: "Sync log retention (days; older rows are deleted, UTC)",
          default: String(d.syncLogRetentionDays),
          validate: positive,
        }),
      )
    : d.syncLogRetentionDays;
  const snapshotRetention = Number(
    await p.input({
      message: "Snapshot tables to keep per sync",
      default: String(d.snapshotRetention),
      validate: positive,
    }),
  );
  const retryFailedRecords = await p.confirm({
    message: "Retry failed records on the next run?",
    default: d.retryFailedRecords,
  });
  return { retainSyncLogs, syncLogRetentionDays, snapshotRetention, retryFailedRecords };
}

// ---- flags ----

export interface InitFlags {
  yes?: boolean;
  force?: boolean;
  check?: boolean;
  destinationName?: string;
  apiKeyEnv?: string;
  dataCenter?: string;
  projectType?: string;
  baseUrl?: string;
  listId?: string;
  listName?: string;
  listDescription?: string;
  updateExistingUsersOnly?: boolean;
  emailColumn?: string;
  userIdColumn?: string;
  sourceName?: string;
  sourceType?: string;
  duckdbPath?: string;
  sourceUrl?: string;
  model?: string;
  table?: string;
  syncName?: string;
  schedule?: string;
  retainSyncLogs?: boolean;
  syncLogRetentionDays?: string;
  snapshotRetention?: string;
  retryFailedRecords?: boolean;
}

function oneOf<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new ConfigError(`"${value}" is not one of ${allowed.join(", ")}`, flag);
}

function positiveInt(flag: string, value: string): number {
  if (!/^[1-9]\d*$/.test(value)) throw new ConfigError("must be a whole number, at least 1", flag);
  return Number(value);
}

/** What the flags answer; with --yes the rest takes defaults or is refused when required. */
export function answersFromFlags(f: InitFlags): Partial<InitAnswers> {
  const a: Partial<InitAnswers> = {};
  if (f.destinationName !== undefined) a.destinationName = f.destinationName;
  if (f.apiKeyEnv !== undefined) {
    if (!VAR_NAME.test(f.apiKeyEnv))
      throw new ConfigError(
        "the NAME of an environment variable, e.g. ITERABLE_API_KEY (not the key)",
        "--api-key-env",
      );
    a.apiKeyEnv = f.apiKeyEnv;
  }
  if (f.dataCenter !== undefined)
    a.dataCenter = oneOf("--data-center", f.dataCenter.toUpperCase(), ["US", "EU"] as const);
  if (f.projectType !== undefined)
    a.projectType = oneOf("--project-type", f.projectType, ["email", "userId", "hybrid"] as const);
  if (f.baseUrl !== undefined) a.baseUrl = f.baseUrl;
  if (f.listId !== undefined && f.listName !== undefined)
    throw new ConfigError("pass --list-id or --list-name, not both");
  if (f.listId !== undefined) a.list = { id: positiveInt("--list-id", f.listId) };
  if (f.listName !== undefined)
    a.list = {
      create: f.listDescription
        ? { name: f.listName, description: f.listDescription }
        : { name: f.listName },
    };
  if (f.updateExistingUsersOnly !== undefined)
    a.updateExistingUsersOnly = f.updateExistingUsersOnly;
  if (f.emailColumn !== undefined || f.userIdColumn !== undefined) {
    a.identifiers = {};
    if (f.emailColumn) a.identifiers.email = f.emailColumn;
    if (f.userIdColumn) a.identifiers.userId = f.userIdColumn;
  }
  if (f.sourceName !== undefined) a.sourceName = f.sourceName;
  const sourceType = f.sourceType ?? (f.sourceUrl !== undefined ? undefined : "duckdb");
  if (sourceType !== undefined) {
    const type = oneOf("--source-type", sourceType, ["duckdb", "postgres", "mysql"] as const);
    if (type === "duckdb") {
      if (f.sourceUrl !== undefined)
        throw new ConfigError("DuckDB takes --duckdb-path, not --source-url");
      a.source = { type, path: f.duckdbPath ?? "./warehouse.duckdb" };
    } else {
      if (f.sourceUrl === undefined)
        throw new ConfigError(`--source-type ${type} needs --source-url (e.g. '\${DATABASE_URL}')`);
      a.source = { type, url: f.sourceUrl };
    }
  } else if (f.sourceUrl !== undefined) {
    const type = f.sourceUrl.startsWith("mysql://") ? "mysql" : "postgres";
    a.source = { type, url: f.sourceUrl };
  }
  if (f.model !== undefined && f.table !== undefined)
    throw new ConfigError("pass --model or --table, not both");
  if (f.model !== undefined) a.audience = { model: f.model };
  if (f.table !== undefined) a.audience = { table: f.table };
  if (f.syncName !== undefined) a.syncName = f.syncName;
  if (f.schedule !== undefined) a.schedule = parseScheduleFlag(f.schedule);
  a.observability = {
    retainSyncLogs: f.retainSyncLogs ?? DEFAULT_OBSERVABILITY.retainSyncLogs,
    syncLogRetentionDays:
      f.syncLogRetentionDays !== undefined
        ? positiveInt("--sync-log-retention-days", f.syncLogRetentionDays)
        : DEFAULT_OBSERVABILITY.syncLogRetentionDays,
    snapshotRetention:
      f.snapshotRetention !== undefined
        ? positiveInt("--snapshot-retention", f.snapshotRetention)
        : DEFAULT_OBSERVABILITY.snapshotRetention,
    retryFailedRecords: f.retryFailedRecords ?? DEFAULT_OBSERVABILITY.retryFailedRecords,
  };
  return a;
}

/** --yes: every answer from the flags or its default; what has no default must be given. */
export function completeAnswers(a: Partial<InitAnswers>): InitAnswers {
  const projectType = a.projectType;
  if (!projectType)
    throw new ConfigError(
      "--yes needs --project-type email|userId|hybrid (Iterable: Project settings)",
    );
  if (!a.list) throw new ConfigError("--yes needs --list-id ID or --list-name NAME");
  if (!a.audience) throw new ConfigError("--yes needs --model SQL or --table NAME");
  if (projectType === "email" && a.updateExistingUsersOnly)
    throw new ConfigError(
      "only userId and hybrid projects support it",
      "--update-existing-users-only",
    );
  const identifiers = {
    ...(projectType !== "userId" ? { email: a.identifiers?.email ?? "email" } : {}),
    ...(projectType !== "email" ? { userId: a.identifiers?.userId ?? "user_id" } : {}),
  };
  if (projectType === "hybrid" && a.identifiers) {
    // Flags given for a hybrid project name exactly the columns the model has.
    if (a.identifiers.email === undefined) delete identifiers.email;
    if (a.identifiers.userId === undefined) delete identifiers.userId;
  }
  return {
    destinationName: a.destinationName ?? "iterable",
    apiKeyEnv: a.apiKeyEnv ?? "ITERABLE_API_KEY",
    dataCenter: a.dataCenter ?? "US",
    projectType,
    ...(a.baseUrl ? { baseUrl: a.baseUrl } : {}),
    list: a.list,
    updateExistingUsersOnly: a.updateExistingUsersOnly ?? false,
    identifiers,
    sourceName: a.sourceName ?? "warehouse",
    source: a.source ?? { type: "duckdb", path: "./warehouse.duckdb" },
    syncName: a.syncName ?? defaultSyncName(a.list),
    audience: a.audience,
    schedule: a.schedule ?? { type: "manual" },
    observability: a.observability ?? DEFAULT_OBSERVABILITY,
  };
}

// ---- the command ----

export interface InitRun {
  file: string;
  flags: InitFlags;
  env: Readonly<Record<string, string | undefined>>;
  prompter?: Prompter;
  out?: NodeJS.WritableStream;
}

/** Asks (or reads flags), writes the file, runs check; returns the exit code. */
export async function runInit(run: InitRun): Promise<number> {
  const out = run.out ?? process.stdout;
  const say = (line: string) => out.write(`${line}\n`);
  if (existsSync(run.file) && !run.flags.force) {
    throw new ConfigError(
      `${run.file} exists; pass --force to overwrite it, or -c OTHER.yaml to write another file`,
    );
  }
  const defaults = answersFromFlags(run.flags);
  let answers: InitAnswers;
  if (run.flags.yes) {
    answers = completeAnswers(defaults);
  } else {
    const prompter = run.prompter ?? terminalPrompter;
    if (!run.prompter && !process.stdin.isTTY) {
      throw new ConfigError(
        "init asks questions on a terminal; in scripts pass --yes and the answers as flags (audience-sync init --help)",
      );
    }
    answers = await askAnswers({ prompter, env: run.env, defaults, say });
  }
  const text = renderConfig(answers);
  await writeFile(run.file, text, { encoding: "utf8", flag: run.flags.force ? "w" : "wx" });
  say(`wrote ${run.file}`);

  if (run.flags.check === false) return EXIT.ok;
  const missing = Object.keys(placeholderEnv(answers)).filter((v) => !run.env[v]);
  if (missing.length > 0) {
    say(
      `set ${missing.map((v) => `$${v}`).join(" and ")}, then check the setup with: audience-sync${run.file === "./audience-sync.yaml" ? "" : ` -c ${run.file}`} check`,
    );
    return EXIT.ok;
  }
  say("");
  const config = await loadConfig(run.file, { env: run.env });
  return await runCheck(config, answers.syncName, { out });
}

export function registerInit(program: Command): void {
  program
    .command("init")
    .description("set up audience-sync.yaml step by step (or from flags with --yes), then check it")
    .option("-y, --yes", "do not ask: take every answer from the flags below or its default")
    .option("--force", "overwrite an existing config file")
    .option("--no-check", "do not run check after writing the file")
    .option("--destination-name <name>", "name of the Iterable destination (default iterable)")
    .option(
      "--api-key-env <VAR>",
      "environment variable holding the API key (default ITERABLE_API_KEY)",
    )
    .option("--data-center <dc>", "US or EU (default US)")
    .option("--project-type <type>", "email, userId or hybrid")
    .option("--base-url <url>", "API root instead of the data center's (the emulator, a proxy)")
    .option("--list-id <id>", "sync into this existing list")
    .option("--list-name <name>", "sync into a list of this name, created on the first run")
    .option("--list-description <text>", "description of the list --list-name creates")
    .option(
      "--update-existing-users-only",
      "only add users Iterable already knows (userId, hybrid)",
    )
    .option("--email-column <column>", "model column with the email (default email)")
    .option("--user-id-column <column>", "model column with the userId (default user_id)")
    .option("--source-name <name>", "name of the source (default warehouse)")
    .option("--source-type <type>", "duckdb, postgres or mysql (default duckdb)")
    .option("--duckdb-path <file>", "DuckDB file (default ./warehouse.duckdb)")
    .option(
      "--source-url <url>",
      `postgres:// or mysql:// URL, or '\${DATABASE_URL}' to read it from the environment`,
    )
    .option("--model <sql>", "SQL query whose rows are the audience")
    .option("--table <name>", "table or view whose rows are the audience")
    .option("--sync-name <name>", "name of the sync (default from the list name)")
    .option("--schedule <when>", '"manual", "every 6h at 06:30" or "cron 0 6 * * *" (UTC)')
    .option("--no-retain-sync-logs", "do not write per-record sync logs")
    .option("--sync-log-retention-days <n>", "days sync logs are kept (default 7)")
    .option("--snapshot-retention <n>", "snapshot tables kept per sync (default 2)")
    .option("--no-retry-failed-records", "do not retry failed records until their row changes")
    .action(async (flags: InitFlags) => {
      try {
        process.exitCode = await runInit({
          file: program.opts<{ config: string }>().config,
          flags,
          env: process.env,
        });
      } catch (err) {
        // Ctrl-C at a question: inquirer's ExitPromptError; nothing has been written yet.
        if (err instanceof Error && err.name === "ExitPromptError") {
          process.stderr.write("\ninit cancelled; nothing written\n");
          process.exitCode = EXIT.failed;
          return;
        }
        throw err;
      }
    });
}
