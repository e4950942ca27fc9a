/**
 * The schema of `audience-sync.yaml`. Every TypeScript type of the config is inferred from here,
 * and the JSON Schema that editors use is generated from here (src/config/json-schema.ts), so the
 * three can never disagree. Rules that span sections (a sync's destination decides which
 * identifiers it may use) live in src/config/rules.ts.
 */
import { Cron, type CronOptions } from "croner";
import { z } from "zod";
import {
  DATA_CENTER_HOSTS,
  type DataCenter,
  PROJECT_TYPES,
  type ProjectType,
} from "../iterable/wire.js";
import { isDuration, parseDuration } from "./duration.js";

/** How every cron expression of the config is read; the scheduler must use the same options so
 *  that what `check` accepts is what `serve` runs. */
export const CRON_OPTIONS = { mode: "5-part", timezone: "UTC" } as const satisfies CronOptions;

export const MIN_BASIC_INTERVAL_MS = 5 * 60_000;
export const MAX_BASIC_INTERVAL_MS = 24 * 3_600_000;
/** Iterable documents a 4 MB cap on bulk request bodies (NOTES.md, Limits); stay under it. */
export const MAX_BATCH_BYTES = 4_000_000;
/** Subscribers per lists/subscribe or lists/unsubscribe request (NOTES.md, Limits). */
export const MAX_BATCH_SIZE = 1000;

// Object schemas refuse unknown keys: a misspelt setting (`updateExistingUserOnly`) silently
// ignored would do the opposite of what the user asked for.
function strict<Shape extends z.core.$ZodLooseShape>(shape: Shape) {
  const known = Object.keys(shape).join(", ");
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === "unrecognized_keys" ? `unknown setting; valid here: ${known}` : undefined,
  });
}

/** Sync names become parts of warehouse table names and CLI arguments. */
const NAME = /^[A-Za-z0-9_-]+$/;
const NAME_MAX = 48;
const Name = z
  .string()
  .regex(NAME, "use only letters, digits, - and _")
  .max(NAME_MAX, `use at most ${NAME_MAX} characters`);

const SqlIdentifier = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be a plain identifier: letters, digits and _");

const StateSchema = SqlIdentifier.default("audience_sync").meta({
  description:
    "Schema (MySQL: database) where audience-sync keeps snapshots, sync logs and run history.",
});

export const DuckDbSourceSchema = strict({
  type: z.literal("duckdb"),
  path: z.string().min(1, "must not be empty").default("./warehouse.duckdb").meta({
    description:
      "DuckDB database file; a relative path is read from the config file's directory. :memory: for an in-memory database.",
  }),
  stateSchema: StateSchema,
  memoryLimit: z
    .string()
    .regex(
      /^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$/i,
      'must be a size like "1GB" or "512MiB"',
    )
    .optional()
    .meta({
      description:
        "Most memory DuckDB's buffer pool may use inside the audience-sync process (DuckDB's memory_limit), e.g. 1GB; beyond it, work tables spill to <database>.tmp. Unset: 192MB. DuckDB's own default is 80% of the machine's RAM.",
    }),
});

function serverSource<Type extends "postgres" | "mysql">(type: Type, schemes: readonly string[]) {
  const example = `${schemes[0]}://user:password@host:port/database`;
  return strict({
    type: z.literal(type),
    url: z
      .string()
      .refine((url) => schemes.some((s) => url.startsWith(`${s}://`)), {
        message: `must be a connection URL like ${example}`,
      })
      .optional()
      .meta({ description: `Connection URL, ${example}. Usually \${DATABASE_URL}.` }),
    host: z.string().min(1, "must not be empty").optional(),
    port: z.number().int().min(1).max(65535).optional(),
    user: z.string().min(1, "must not be empty").optional(),
    password: z.string().optional(),
    database: z.string().min(1, "must not be empty").optional(),
    ssl: z.boolean().optional().meta({ description: "Connect with TLS." }),
    stateSchema: StateSchema,
  }).superRefine(
    (source, ctx) => {
      const parts = (["host", "port", "user", "password", "database"] as const).filter(
        (key) => source[key] !== undefined,
      );
      if (source.url !== undefined && parts.length > 0) {
        ctx.addIssue({
          code: "custom",
          path: ["url"],
          message: `set either url or ${parts.join("/")}, not both`,
        });
      } else if (source.url === undefined && source.host === undefined) {
        ctx.addIssue({
          code: "custom",
          path: [],
          message: `no connection: set url (e.g. \${DATABASE_URL}) or host, port, user, password and database`,
        });
      }
    },
    { when: (payload) => typeof payload.value === "object" && payload.value !== null },
  );
}

export const PostgresSourceSchema = serverSource("postgres", ["postgres", "postgresql"]);
export const MySqlSourceSchema = serverSource("mysql", ["mysql"]);

export const SourceSchema = z.discriminatedUnion(
  "type",
  [DuckDbSourceSchema, PostgresSourceSchema, MySqlSourceSchema],
  { error: "must be one of duckdb, postgres, mysql" },
);

export const IterableDestinationSchema = strict({
  type: z.literal("iterable"),
  apiKey: z.string().min(1, "must not be empty").meta({
    description: `Iterable server-side API key. Write \${ITERABLE_API_KEY}, not the key itself.`,
  }),
  dataCenter: z
    .enum(Object.keys(DATA_CENTER_HOSTS) as [DataCenter, ...DataCenter[]], {
      error: "must be US or EU",
    })
    .default("US")
    .meta({ description: "Where the Iterable project lives. A key works only in its own." }),
  projectType: z
    .enum(PROJECT_TYPES as unknown as [ProjectType, ...ProjectType[]], {
      error: "must be email, userId or hybrid (Iterable: Project settings, Project type)",
    })
    .meta({ description: "How the Iterable project identifies users: email, userId or hybrid." }),
  baseUrl: z
    .url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" })
    .optional()
    .meta({ description: "Overrides dataCenter: the local emulator, a sandbox or a proxy." }),
  batchSize: z
    .number()
    .int()
    .min(1)
    .max(MAX_BATCH_SIZE)
    .default(MAX_BATCH_SIZE)
    .meta({ description: "Subscribers per request." }),
  maxBatchBytes: z
    .number()
    .int()
    .min(1)
    .max(MAX_BATCH_BYTES)
    .default(MAX_BATCH_BYTES)
    .meta({ description: "Largest request body in bytes; batches are split to stay under it." }),
  concurrency: z
    .number()
    .int()
    .min(1)
    .max(32)
    .default(4)
    .meta({ description: "Requests in flight at once." }),
  maxRequestsPerSecond: z
    .number()
    .positive()
    .optional()
    .meta({ description: "Upper bound on the request rate; unset means adaptive only." }),
  timeoutMs: z
    .number()
    .int()
    .positive()
    .default(30_000)
    .meta({ description: "Time allowed for one request, in milliseconds." }),
}).superRefine(
  (destination, ctx) => {
    // Iterable's "Project Types and Unique Identifiers": EU data centre supports hybrid and
    // userID-based projects only (NOTES.md, Data centres).
    if (destination.dataCenter === "EU" && destination.projectType === "email") {
      ctx.addIssue({
        code: "custom",
        path: ["dataCenter"],
        message:
          "EU projects cannot be email-based; use projectType userId or hybrid, or dataCenter US",
      });
    }
  },
  { when: (payload) => typeof payload.value === "object" && payload.value !== null },
);

export const DestinationSchema = z.discriminatedUnion("type", [IterableDestinationSchema], {
  error: "must be iterable (the only destination type)",
});

export const ListSchema = z.union(
  [
    strict({
      id: z
        .number()
        .int()
        .positive()
        .meta({ description: "Id of an existing static list (Iterable: Audience, Lists)." }),
    }),
    strict({
      create: strict({
        name: z.string().trim().min(1, "must not be empty"),
        description: z.string().optional(),
      }).meta({
        description:
          "A list audience-sync creates on the first run; found again by name, never created twice.",
      }),
    }),
  ],
  { error: "set exactly one of { id: 123 } or { create: { name: ... } }" },
);

const HH_MM = /^([01]\d|2[0-3]):[0-5]\d$/;

export const ScheduleSchema = z
  .discriminatedUnion(
    "type",
    [
      strict({ type: z.literal("manual") }),
      strict({
        type: z.literal("basic"),
        every: z
          .string()
          .superRefine((every, ctx) => {
            if (!isDuration(every)) {
              ctx.addIssue({
                code: "custom",
                message: `not a duration; write e.g. "30m", "6h", "1d" or "1h30m"`,
              });
              return;
            }
            const ms = parseDuration(every);
            if (ms < MIN_BASIC_INTERVAL_MS || ms > MAX_BASIC_INTERVAL_MS) {
              ctx.addIssue({
                code: "custom",
                message: `must be between 5m and 24h (got ${every}); for other patterns use type: cron`,
              });
            }
          })
          .meta({ description: 'Interval between runs: "30m", "6h", "1d"; 5m to 24h.' }),
        at: z
          .string()
          .regex(HH_MM, 'must be "HH:MM", 24-hour UTC, e.g. "06:30" (quote it in YAML)')
          .optional()
          .meta({ description: 'Time of day (UTC, "HH:MM") the intervals are counted from.' }),
      }),
      strict({
        type: z.literal("cron"),
        expression: z
          .string()
          .superRefine((expression, ctx) => {
            const problem = cronProblem(expression);
            if (problem) ctx.addIssue({ code: "custom", message: problem });
          })
          .meta({ description: 'Five-field cron expression, read in UTC, e.g. "0 6 * * *".' }),
      }),
    ],
    { error: "must be one of manual, basic, cron" },
  )
  .prefault({ type: "manual" });

/** Why a cron expression is refused, or undefined when it is fine. */
export function cronProblem(expression: string): string | undefined {
  const help = 'minute hour day-of-month month day-of-week, in UTC, e.g. "0 6 * * *"';
  let job: Cron | undefined;
  try {
    job = new Cron(expression, { ...CRON_OPTIONS, paused: true });
    if (job.nextRun() === null) return `never fires; write five fields: ${help}`;
    return undefined;
  } catch (err) {
    const reason = err instanceof Error ? err.message.replace(/^CronPattern: /, "") : String(err);
    return `not a valid cron expression (${reason}); write five fields: ${help}`;
  } finally {
    job?.stop();
  }
}

export const ObservabilitySchema = strict({
  retainSyncLogs: z
    .boolean()
    .default(true)
    .meta({ description: "Write one sync_logs row per record and outcome." }),
  syncLogRetentionDays: z
    .number()
    .int()
    .min(1)
    .default(7)
    .meta({ description: "Sync log rows older than this many UTC days are deleted." }),
  snapshotRetention: z
    .number()
    .int()
    .min(1)
    .default(2)
    .meta({ description: "Snapshot tables kept per sync, newest first." }),
  retryFailedRecords: z.boolean().default(true).meta({
    description:
      "Retry failed records on the next run; false commits them as if synced until the row changes.",
  }),
}).prefault({});

const TABLE = /^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$/;

export const SyncSchema = strict({
  // References are checked against the defined names in rules.ts, which can list them.
  source: z
    .string()
    .min(1, "must not be empty")
    .meta({ description: "Name of an entry under sources." }),
  destination: z
    .string()
    .min(1, "must not be empty")
    .meta({ description: "Name of an entry under destinations." }),
  model: z
    .string()
    .trim()
    .min(1, "must not be empty")
    .optional()
    .meta({ description: "SQL query whose rows are the audience. Exclusive with table." }),
  table: z
    .string()
    .regex(TABLE, 'must be "schema.table" or "table"; for other names use model: select ...')
    .optional()
    .meta({ description: 'Table or view whose rows are the audience: "schema.table" or "table".' }),
  list: ListSchema.meta({ description: "The Iterable static list: { id } or { create }." }),
  identifiers: strict({
    email: z
      .string()
      .min(1, "must not be empty")
      .optional()
      .meta({ description: "Column holding the email address." }),
    userId: z
      .string()
      .min(1, "must not be empty")
      .optional()
      .meta({ description: "Column holding the Iterable userId." }),
  }).meta({ description: "Columns of the model that identify users." }),
  updateExistingUsersOnly: z.boolean().default(false).meta({
    description: "Skip users Iterable does not know yet (userId and hybrid projects only).",
  }),
  mode: z
    .literal("mirror", {
      error:
        'only "mirror" is supported: the list follows the model, rows that appear are subscribed and rows that disappear are unsubscribed',
    })
    .default("mirror"),
  schedule: ScheduleSchema.meta({ description: "When serve runs this sync; UTC." }),
  observability: ObservabilitySchema,
}).superRefine(
  (sync, ctx) => {
    if (sync.model !== undefined && sync.table !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["table"],
        message: "set either model or table, not both",
      });
    } else if (sync.model === undefined && sync.table === undefined) {
      ctx.addIssue({
        code: "custom",
        path: [],
        message: "no audience: set model (a SQL query) or table (schema.table)",
      });
    }
  },
  { when: (payload) => typeof payload.value === "object" && payload.value !== null },
);

const names = (what: string) =>
  Name.meta({ description: `${what} name: letters, digits, - and _.` });

export const ConfigSchema = strict({
  sources: z
    .record(names("Source"), SourceSchema)
    .default({})
    .meta({ description: "Warehouses to read audiences from." }),
  destinations: z
    .record(names("Destination"), DestinationSchema)
    .default({})
    .meta({ description: "Iterable projects to write lists in." }),
  syncs: z
    .record(names("Sync"), SyncSchema)
    .default({})
    .meta({ description: "One entry per list kept equal to a model." }),
}).meta({
  title: "audience-sync configuration",
  description: "audience-sync.yaml: mirror warehouse queries into Iterable static lists.",
});

export type Config = z.infer<typeof ConfigSchema>;
export type SourceConfig = z.infer<typeof SourceSchema>;
export type DuckDbSourceConfig = z.infer<typeof DuckDbSourceSchema>;
export type PostgresSourceConfig = z.infer<typeof PostgresSourceSchema>;
export type MySqlSourceConfig = z.infer<typeof MySqlSourceSchema>;
export type DestinationConfig = z.infer<typeof DestinationSchema>;
export type SyncConfig = z.infer<typeof SyncSchema>;
export type ListConfig = z.infer<typeof ListSchema>;
export type Schedule = z.infer<typeof ScheduleSchema>;
export type Observability = z.infer<typeof ObservabilitySchema>;
