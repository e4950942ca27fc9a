import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/index.js";
import { API_KEY, build, configErrorOf, ENV, ref, refusal } from "./helpers.js";

// Every refusal names the setting (dotted path) and says how to fix it.

describe("cross-section rules", () => {
  it("refuses an unknown source and lists the defined ones", () => {
    expect(refusal(build({ sync: { source: "wh" } }))).toBe(
      'syncs.vip-users.source: unknown source "wh"; defined sources: warehouse',
    );
  });

  it("refuses an unknown destination and lists the defined ones", () => {
    expect(refusal(build({ sync: { destination: "iter" } }))).toBe(
      'syncs.vip-users.destination: unknown destination "iter"; defined destinations: iterable',
    );
  });

  it("says when no source is defined at all", () => {
    const config = { ...build(), sources: {} };
    expect(refusal(config)).toBe(
      'syncs.vip-users.source: unknown source "warehouse"; no sources are defined: add one under sources',
    );
  });

  it("refuses updateExistingUsersOnly in an email-based project", () => {
    const config = build({
      destination: { projectType: "email" },
      sync: { identifiers: { email: "email" }, updateExistingUsersOnly: true },
    });
    expect(refusal(config)).toBe(
      'syncs.vip-users.updateExistingUsersOnly: only userID-based and hybrid projects support it and destination "iterable" is an email-based project; remove it or set it to false',
    );
  });

  it("refuses a userId identifier in an email-based project", () => {
    const config = build({ destination: { projectType: "email" } });
    expect(refusal(config)).toBe(
      'syncs.vip-users.identifiers.userId: destination "iterable" is an email-based project, which identifies users by email only; remove identifiers.userId',
    );
  });

  it("requires the email identifier in an email-based project", () => {
    const config = build({ destination: { projectType: "email" }, sync: { identifiers: {} } });
    expect(refusal(config)).toBe(
      'syncs.vip-users.identifiers.email: required: destination "iterable" is an email-based project; name the column that holds the email address',
    );
  });

  it("refuses an email identifier in a userID-based project", () => {
    const config = build({ destination: { projectType: "userId" } });
    expect(refusal(config)).toBe(
      'syncs.vip-users.identifiers.email: destination "iterable" is a userID-based project, which identifies users by userId only; remove identifiers.email',
    );
  });

  it("requires the userId identifier in a userID-based project", () => {
    const config = build({ destination: { projectType: "userId" }, sync: { identifiers: {} } });
    expect(refusal(config)).toBe(
      'syncs.vip-users.identifiers.userId: required: destination "iterable" is a userID-based project; name the column that holds the userId',
    );
  });

  it("requires at least one identifier in a hybrid project", () => {
    expect(refusal(build({ sync: { identifiers: {} } }))).toBe(
      'syncs.vip-users.identifiers: destination "iterable" is a hybrid project; name the email column, the userId column, or both',
    );
  });

  it("refuses an EU project that is email-based", () => {
    const config = build({
      destination: { dataCenter: "EU", projectType: "email" },
      sync: { identifiers: { email: "email" } },
    });
    expect(refusal(config)).toBe(
      "destinations.iterable.dataCenter: EU projects cannot be email-based; use projectType userId or hybrid, or dataCenter US",
    );
  });
});

describe("sync settings", () => {
  it("refuses any mode but mirror", () => {
    expect(refusal(build({ sync: { mode: "append" } }))).toBe(
      'syncs.vip-users.mode: only "mirror" is supported: the list follows the model, rows that appear are subscribed and rows that disappear are unsubscribed',
    );
  });

  it("refuses both model and table", () => {
    expect(refusal(build({ sync: { table: "marts.vip" } }))).toBe(
      "syncs.vip-users.table: set either model or table, not both",
    );
  });

  it("refuses neither model nor table", () => {
    expect(refusal(build({ sync: { model: undefined } }))).toBe(
      "syncs.vip-users: no audience: set model (a SQL query) or table (schema.table)",
    );
  });

  it("refuses an empty model", () => {
    expect(refusal(build({ sync: { model: "  " } }))).toBe(
      "syncs.vip-users.model: must not be empty",
    );
  });

  it("refuses a table name with more than schema and table", () => {
    expect(refusal(build({ sync: { model: undefined, table: "db.marts.vip" } }))).toBe(
      'syncs.vip-users.table: must be "schema.table" or "table"; for other names use model: select ...',
    );
  });

  it("refuses a list with both id and create", () => {
    expect(refusal(build({ sync: { list: { id: 1, create: { name: "VIP" } } } }))).toBe(
      "syncs.vip-users.list: set exactly one of { id: 123 } or { create: { name: ... } }",
    );
  });

  it("refuses a list with neither", () => {
    expect(refusal(build({ sync: { list: {} } }))).toBe(
      "syncs.vip-users.list: set exactly one of { id: 123 } or { create: { name: ... } }",
    );
  });

  it("reports the problem inside the list form that was meant", () => {
    expect(refusal(build({ sync: { list: { id: 0 } } }))).toBe(
      "syncs.vip-users.list.id: must be greater than 0",
    );
    expect(refusal(build({ sync: { list: { id: 1.5 } } }))).toBe(
      "syncs.vip-users.list.id: must be an integer, not a number",
    );
    expect(refusal(build({ sync: { list: { create: {} } } }))).toBe(
      "syncs.vip-users.list.create.name: required",
    );
  });

  it("refuses a sync name with characters that cannot name a table", () => {
    const config = build();
    const syncs = { "vip users!": config.syncs["vip-users"] };
    expect(refusal({ ...config, syncs })).toBe(
      'syncs."vip users!": invalid name: use only letters, digits, - and _',
    );
  });

  it("refuses a missing identifiers block", () => {
    expect(refusal(build({ sync: { identifiers: undefined } }))).toBe(
      "syncs.vip-users.identifiers: required",
    );
  });

  it("refuses observability values below 1", () => {
    const observability = { syncLogRetentionDays: 0, snapshotRetention: 0 };
    expect(refusal(build({ sync: { observability } })).split("\n")).toEqual([
      "syncs.vip-users.observability.syncLogRetentionDays: must be at least 1",
      "syncs.vip-users.observability.snapshotRetention: must be at least 1",
    ]);
  });

  it("refuses a misspelt setting and lists the valid ones", () => {
    expect(refusal(build({ sync: { updateExistingUserOnly: true } }))).toBe(
      "syncs.vip-users.updateExistingUserOnly: unknown setting; valid here: source, destination, model, table, list, identifiers, updateExistingUsersOnly, mode, schedule, observability",
    );
  });
});

describe("schedules", () => {
  const scheduleRefusal = (schedule: unknown) => refusal(build({ sync: { schedule } }));

  it("refuses a cron expression that does not parse", () => {
    expect(scheduleRefusal({ type: "cron", expression: "61 * * * *" })).toBe(
      'syncs.vip-users.schedule.expression: not a valid cron expression (Invalid value for minute: 61); write five fields: minute hour day-of-month month day-of-week, in UTC, e.g. "0 6 * * *"',
    );
  });

  it("refuses a cron expression with six fields", () => {
    expect(scheduleRefusal({ type: "cron", expression: "0 0 6 * * *" })).toMatch(
      /^syncs\.vip-users\.schedule\.expression: not a valid cron expression \(.*\); write five fields: /,
    );
  });

  it("refuses a cron expression that never fires", () => {
    expect(scheduleRefusal({ type: "cron", expression: "0 0 30 2 *" })).toBe(
      'syncs.vip-users.schedule.expression: never fires; write five fields: minute hour day-of-month month day-of-week, in UTC, e.g. "0 6 * * *"',
    );
  });

  it("refuses a basic interval under 5 minutes or over 24 hours", () => {
    expect(scheduleRefusal({ type: "basic", every: "4m" })).toBe(
      "syncs.vip-users.schedule.every: must be between 5m and 24h (got 4m); for other patterns use type: cron",
    );
    expect(scheduleRefusal({ type: "basic", every: "2d" })).toBe(
      "syncs.vip-users.schedule.every: must be between 5m and 24h (got 2d); for other patterns use type: cron",
    );
    expect(scheduleRefusal({ type: "basic", every: "24h1m" })).toMatch(
      /must be between 5m and 24h/,
    );
  });

  it("refuses a basic interval that is not a duration", () => {
    expect(scheduleRefusal({ type: "basic", every: "6 hours" })).toBe(
      'syncs.vip-users.schedule.every: not a duration; write e.g. "30m", "6h", "1d" or "1h30m"',
    );
  });

  it("refuses an at that is not HH:MM", () => {
    for (const at of ["6:30", "24:00", "06:60", "0630"]) {
      expect(scheduleRefusal({ type: "basic", every: "1d", at })).toBe(
        'syncs.vip-users.schedule.at: must be "HH:MM", 24-hour UTC, e.g. "06:30" (quote it in YAML)',
      );
    }
  });

  it("refuses an unknown schedule type", () => {
    expect(scheduleRefusal({ type: "hourly" })).toBe(
      "syncs.vip-users.schedule.type: must be one of manual, basic, cron",
    );
  });
});

describe("destination settings", () => {
  const destinationRefusal = (destination: Record<string, unknown>) =>
    refusal(build({ destination }));

  it("refuses a missing or empty API key", () => {
    expect(destinationRefusal({ apiKey: undefined })).toBe(
      "destinations.iterable.apiKey: required",
    );
    expect(destinationRefusal({ apiKey: "" })).toBe(
      "destinations.iterable.apiKey: must not be empty",
    );
  });

  it("refuses a missing or unknown project type", () => {
    const message =
      "destinations.iterable.projectType: must be email, userId or hybrid (Iterable: Project settings, Project type)";
    expect(destinationRefusal({ projectType: undefined })).toBe(message);
    expect(destinationRefusal({ projectType: "user_id" })).toBe(message);
  });

  it("refuses an unknown data centre", () => {
    expect(destinationRefusal({ dataCenter: "APAC" })).toBe(
      "destinations.iterable.dataCenter: must be US or EU",
    );
  });

  it("refuses a baseUrl that is not http(s)", () => {
    for (const baseUrl of ["ftp://example.com", "not a url"]) {
      expect(destinationRefusal({ baseUrl })).toBe(
        "destinations.iterable.baseUrl: must be an http:// or https:// URL",
      );
    }
  });

  it("refuses batch and concurrency settings out of range", () => {
    expect(destinationRefusal({ batchSize: 1001 })).toBe(
      "destinations.iterable.batchSize: must be at most 1000",
    );
    expect(destinationRefusal({ batchSize: 0 })).toBe(
      "destinations.iterable.batchSize: must be at least 1",
    );
    expect(destinationRefusal({ maxBatchBytes: 4_000_001 })).toBe(
      "destinations.iterable.maxBatchBytes: must be at most 4000000",
    );
    expect(destinationRefusal({ concurrency: 33 })).toBe(
      "destinations.iterable.concurrency: must be at most 32",
    );
    expect(destinationRefusal({ concurrency: 0 })).toBe(
      "destinations.iterable.concurrency: must be at least 1",
    );
    expect(destinationRefusal({ maxRequestsPerSecond: 0 })).toBe(
      "destinations.iterable.maxRequestsPerSecond: must be greater than 0",
    );
    expect(destinationRefusal({ timeoutMs: -1 })).toBe(
      "destinations.iterable.timeoutMs: must be greater than 0",
    );
  });

  it("refuses a value of the wrong type", () => {
    expect(destinationRefusal({ batchSize: "many" })).toBe(
      "destinations.iterable.batchSize: must be a number, not text",
    );
  });

  it("refuses an unknown destination type", () => {
    expect(destinationRefusal({ type: "braze" })).toBe(
      "destinations.iterable.type: must be iterable (the only destination type)",
    );
  });
});

describe("source settings", () => {
  const sourceRefusal = (source: Record<string, unknown>) =>
    refusal({ ...build(), sources: { warehouse: source } });

  it("refuses an unknown source type", () => {
    expect(sourceRefusal({ type: "snowflake" })).toBe(
      "sources.warehouse.type: must be one of duckdb, postgres, mysql",
    );
  });

  it("refuses a stateSchema that is not a plain identifier", () => {
    expect(sourceRefusal({ type: "duckdb", stateSchema: "audience-sync" })).toBe(
      "sources.warehouse.stateSchema: must be a plain identifier: letters, digits and _",
    );
    expect(sourceRefusal({ type: "postgres", url: "postgres://h/db", stateSchema: "a.b" })).toBe(
      "sources.warehouse.stateSchema: must be a plain identifier: letters, digits and _",
    );
  });

  it("refuses a server source without a connection", () => {
    expect(sourceRefusal({ type: "postgres" })).toBe(
      `sources.warehouse: no connection: set url (e.g. ${ref("DATABASE_URL")}) or host, port, user, password and database`,
    );
  });

  it("refuses url together with connection parts", () => {
    expect(sourceRefusal({ type: "mysql", url: "mysql://h/db", host: "h", port: 3306 })).toBe(
      "sources.warehouse.url: set either url or host/port, not both",
    );
  });

  it("refuses a url of another database", () => {
    expect(sourceRefusal({ type: "postgres", url: "mysql://h/db" })).toBe(
      "sources.warehouse.url: must be a connection URL like postgres://user:password@host:port/database",
    );
    expect(sourceRefusal({ type: "mysql", url: "postgres://h/db" })).toBe(
      "sources.warehouse.url: must be a connection URL like mysql://user:password@host:port/database",
    );
  });

  it("refuses a port out of range", () => {
    expect(sourceRefusal({ type: "postgres", host: "h", port: 70000 })).toBe(
      "sources.warehouse.port: must be at most 65535",
    );
  });
});

describe("reporting", () => {
  it("reports every problem, one per line, in the order of the file", () => {
    const config = build({
      destination: { batchSize: 5000 },
      sync: { source: "wh", mode: "append", schedule: { type: "basic", every: "1m" } },
    });
    expect(refusal(config).split("\n")).toEqual([
      "destinations.iterable.batchSize: must be at most 1000",
      'syncs.vip-users.source: unknown source "wh"; defined sources: warehouse',
      'syncs.vip-users.mode: only "mirror" is supported: the list follows the model, rows that appear are subscribed and rows that disappear are unsubscribed',
      "syncs.vip-users.schedule.every: must be between 5m and 24h (got 1m); for other patterns use type: cron",
    ]);
  });

  it("checks cross-section rules of a sync that has other problems too", () => {
    const config = build({
      destination: { projectType: "email" },
      sync: { list: { id: -1 } },
    });
    expect(refusal(config).split("\n")).toEqual([
      "syncs.vip-users.list.id: must be greater than 0",
      'syncs.vip-users.identifiers.userId: destination "iterable" is an email-based project, which identifies users by email only; remove identifiers.userId',
    ]);
  });

  it("sets the path of a single problem on the error", () => {
    const err = configErrorOf(() =>
      parseConfig(
        "destinations:\n  it: { type: iterable, apiKey: k, projectType: hybrid, concurrency: 0 }\n",
        { env: {} },
      ),
    );
    expect(err.path).toBe("destinations.it.concurrency");
    expect(err.message).toBe("destinations.it.concurrency: must be at least 1");
  });

  it("never shows the API key, even when it is in the wrong place", () => {
    const config = build({ destination: { apiKey: API_KEY, projectType: API_KEY } });
    const message = refusal(config);
    expect(message).toContain("destinations.iterable.projectType");
    expect(message).not.toContain(API_KEY);
    const viaEnv = refusal(build({ sync: { source: ref("ITERABLE_API_KEY") } }), ENV);
    expect(viaEnv).toContain("syncs.vip-users.source: unknown source");
    expect(viaEnv).not.toContain(API_KEY);
  });

  it("never shows a YAML token, which may be a key", () => {
    const text = `destinations:\n  it:\n    apiKey: ${API_KEY}\n  x: { a: 1 ] ${API_KEY}\n`;
    const err = configErrorOf(() => parseConfig(text, { env: {}, file: "a.yaml" }));
    expect(err.message).toMatch(/^a\.yaml: YAML syntax error: /);
    expect(err.message).not.toContain(API_KEY);
  });

  it("refuses duplicate keys", () => {
    const err = configErrorOf(() => parseConfig("sources: {}\nsources: {}\n", { env: {} }));
    expect(err.message).toBe(
      "config: YAML syntax error: Map keys must be unique at line 2, column 1",
    );
  });

  it("refuses an empty file and a file that is not a mapping", () => {
    expect(configErrorOf(() => parseConfig("", { file: "a.yaml" })).message).toBe(
      "a.yaml: the file is empty; write sources, destinations and syncs (`audience-sync init` does it for you)",
    );
    expect(configErrorOf(() => parseConfig("- a\n", { file: "a.yaml" })).message).toBe(
      "a.yaml: must be a mapping with the keys sources, destinations, syncs",
    );
  });

  it("refuses an unknown top-level key", () => {
    expect(configErrorOf(() => parseConfig("sorces: {}\n", { env: {} })).message).toBe(
      "sorces: unknown setting; valid here: sources, destinations, syncs",
    );
  });
});
