import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  destinationBaseUrl,
  getSync,
  loadConfig,
  parseConfig,
  splitTableName,
} from "../../src/config/index.js";
import { API_KEY, build, configErrorOf, ENV, parseObject } from "./helpers.js";

// The example of PRODUCT.md, "Configuration", verbatim apart from the comments.
const PRODUCT_EXAMPLE = `
sources:
  warehouse:
    type: duckdb            # duckdb (embedded default) | postgres | mysql
    path: ./warehouse.duckdb
    stateSchema: audience_sync
destinations:
  iterable:
    type: iterable
    apiKey: \${ITERABLE_API_KEY}
    dataCenter: US
    projectType: hybrid
syncs:
  vip-users:
    source: warehouse
    destination: iterable
    model: select email, user_id from vip_customers   # or  table: marts.vip_customers
    list: { create: { name: VIP customers, description: Spend over 1k } }  # or  list: { id: 123 }
    identifiers: { email: email, userId: user_id }
    updateExistingUsersOnly: false
    mode: mirror
    schedule: { type: cron, expression: "0 6 * * *" }
    observability:
      retainSyncLogs: true
      syncLogRetentionDays: 7
      snapshotRetention: 2
      retryFailedRecords: true
`;

describe("parseConfig", () => {
  it("reads the example of the product page", () => {
    const config = parseConfig(PRODUCT_EXAMPLE, { env: ENV, file: "/srv/as/audience-sync.yaml" });
    expect(config.sources.warehouse).toEqual({
      type: "duckdb",
      path: "/srv/as/warehouse.duckdb",
      stateSchema: "audience_sync",
    });
    expect(config.destinations.iterable).toMatchObject({ apiKey: API_KEY, projectType: "hybrid" });
    expect(config.syncs["vip-users"]).toEqual({
      source: "warehouse",
      destination: "iterable",
      model: "select email, user_id from vip_customers",
      list: { create: { name: "VIP customers", description: "Spend over 1k" } },
      identifiers: { email: "email", userId: "user_id" },
      updateExistingUsersOnly: false,
      mode: "mirror",
      schedule: { type: "cron", expression: "0 6 * * *" },
      observability: {
        retainSyncLogs: true,
        syncLogRetentionDays: 7,
        snapshotRetention: 2,
        retryFailedRecords: true,
      },
    });
  });

  it("fills every default", () => {
    const config = parseObject(build());
    expect(config.sources.warehouse).toEqual({
      type: "duckdb",
      path: "/etc/audience-sync/warehouse.duckdb",
      stateSchema: "audience_sync",
    });
    expect(config.destinations.iterable).toEqual({
      type: "iterable",
      apiKey: API_KEY,
      projectType: "hybrid",
      dataCenter: "US",
      batchSize: 1000,
      maxBatchBytes: 4_000_000,
      concurrency: 4,
      timeoutMs: 30_000,
    });
    const sync = config.syncs["vip-users"];
    expect(sync?.updateExistingUsersOnly).toBe(false);
    expect(sync?.mode).toBe("mirror");
    expect(sync?.schedule).toEqual({ type: "manual" });
    expect(sync?.observability).toEqual({
      retainSyncLogs: true,
      syncLogRetentionDays: 7,
      snapshotRetention: 2,
      retryFailedRecords: true,
    });
  });

  it("fills the observability keys that are absent and keeps the ones given", () => {
    const config = parseObject(build({ sync: { observability: { snapshotRetention: 5 } } }));
    expect(config.syncs["vip-users"]?.observability).toEqual({
      retainSyncLogs: true,
      syncLogRetentionDays: 7,
      snapshotRetention: 5,
      retryFailedRecords: true,
    });
  });

  it("keeps every destination setting given", () => {
    const destination = {
      dataCenter: "EU",
      projectType: "userId",
      baseUrl: "http://127.0.0.1:4010",
      batchSize: 250,
      maxBatchBytes: 1_000_000,
      concurrency: 32,
      maxRequestsPerSecond: 2.5,
      timeoutMs: 5000,
    };
    const config = parseObject(
      build({ destination, sync: { identifiers: { userId: "user_id" } } }),
    );
    expect(config.destinations.iterable).toEqual({
      type: "iterable",
      apiKey: API_KEY,
      ...destination,
    });
  });

  it("accepts both list forms", () => {
    const byId = parseObject(build({ sync: { list: { id: 42 } } }));
    expect(byId.syncs["vip-users"]?.list).toEqual({ id: 42 });
    const created = parseObject(build({ sync: { list: { create: { name: "VIP" } } } }));
    expect(created.syncs["vip-users"]?.list).toEqual({ create: { name: "VIP" } });
  });

  it("accepts a table instead of a model, with or without a schema", () => {
    for (const table of ["marts.vip_customers", "vip_customers"]) {
      const config = parseObject(build({ sync: { model: undefined, table } }));
      expect(config.syncs["vip-users"]?.table).toBe(table);
      expect(config.syncs["vip-users"]?.model).toBeUndefined();
    }
  });

  it("accepts each schedule form", () => {
    const schedules = [
      { type: "manual" },
      { type: "basic", every: "30m" },
      { type: "basic", every: "6h", at: "06:30" },
      { type: "basic", every: "1d", at: "23:59" },
      { type: "basic", every: "5m" },
      { type: "basic", every: "24h" },
      { type: "cron", expression: "*/15 * * * *" },
    ];
    for (const schedule of schedules) {
      const config = parseObject(build({ sync: { schedule } }));
      expect(config.syncs["vip-users"]?.schedule).toEqual(schedule);
    }
  });

  it("accepts each project type with its identifiers", () => {
    const cases = [
      { projectType: "email", identifiers: { email: "email" } },
      { projectType: "userId", identifiers: { userId: "user_id" } },
      { projectType: "hybrid", identifiers: { email: "email" } },
      { projectType: "hybrid", identifiers: { userId: "user_id" } },
      { projectType: "hybrid", identifiers: { email: "email", userId: "user_id" } },
    ];
    for (const { projectType, identifiers } of cases) {
      const config = parseObject(build({ destination: { projectType }, sync: { identifiers } }));
      expect(config.syncs["vip-users"]?.identifiers).toEqual(identifiers);
    }
  });

  it("accepts updateExistingUsersOnly for userId and hybrid projects", () => {
    const userId = parseObject(
      build({
        destination: { projectType: "userId" },
        sync: { identifiers: { userId: "id" }, updateExistingUsersOnly: true },
      }),
    );
    expect(userId.syncs["vip-users"]?.updateExistingUsersOnly).toBe(true);
    const hybrid = parseObject(build({ sync: { updateExistingUsersOnly: true } }));
    expect(hybrid.syncs["vip-users"]?.updateExistingUsersOnly).toBe(true);
  });

  it("reads postgres and mysql sources by url or by parts", () => {
    const config = parseObject({
      ...build(),
      sources: {
        warehouse: { type: "duckdb" },
        pg: { type: "postgres", url: "postgresql://u:p@127.0.0.1:5432/db", ssl: true },
        pg2: { type: "postgres", host: "127.0.0.1", port: 5432, user: "u", database: "db" },
        my: { type: "mysql", url: "mysql://u:p@127.0.0.1:3306/db", stateSchema: "as_state" },
        my2: { type: "mysql", host: "127.0.0.1", password: "" },
      },
    });
    expect(config.sources.pg).toEqual({
      type: "postgres",
      url: "postgresql://u:p@127.0.0.1:5432/db",
      ssl: true,
      stateSchema: "audience_sync",
    });
    expect(config.sources.pg2).toMatchObject({ host: "127.0.0.1", port: 5432 });
    expect(config.sources.my).toMatchObject({ type: "mysql", stateSchema: "as_state" });
    expect(config.sources.my2).toMatchObject({ type: "mysql", password: "" });
  });
});

describe("DuckDB paths", () => {
  const pathOf = (path: string | undefined, file?: string) => {
    const config = parseObject(build({ source: { path } }), ENV, file);
    const source = config.sources.warehouse;
    return source?.type === "duckdb" ? source.path : undefined;
  };

  it("resolves a relative path against the config file's directory", () => {
    expect(pathOf("./data/wh.duckdb", "/srv/as/conf/audience-sync.yaml")).toBe(
      "/srv/as/conf/data/wh.duckdb",
    );
    expect(pathOf("../wh.duckdb", "/srv/as/conf/audience-sync.yaml")).toBe("/srv/as/wh.duckdb");
    expect(pathOf(undefined, "/srv/as/audience-sync.yaml")).toBe("/srv/as/warehouse.duckdb");
  });

  it("resolves against a relative config file's directory from the working directory", () => {
    expect(pathOf("wh.duckdb", "conf/audience-sync.yaml")).toBe(
      join(process.cwd(), "conf", "wh.duckdb"),
    );
  });

  it("keeps absolute paths and :memory:", () => {
    expect(pathOf("/data/wh.duckdb")).toBe("/data/wh.duckdb");
    expect(pathOf(":memory:")).toBe(":memory:");
  });

  it("resolves against the working directory when the text has no file", () => {
    const config = parseConfig("sources:\n  wh: { type: duckdb, path: wh.duckdb }\n", { env: {} });
    expect(config.sources.wh).toMatchObject({ path: join(process.cwd(), "wh.duckdb") });
  });
});

describe("loadConfig", () => {
  let dir = "";
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "audience-sync-config-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reads a file and resolves the DuckDB path next to it", async () => {
    const file = join(dir, "audience-sync.yaml");
    await writeFile(file, PRODUCT_EXAMPLE);
    const config = await loadConfig(file, { env: ENV });
    expect(config.sources.warehouse).toMatchObject({ path: join(dir, "warehouse.duckdb") });
  });

  it("says how to create a missing file", async () => {
    const file = join(dir, "nope.yaml");
    const err = await loadConfig(file, { env: ENV }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).name).toBe("ConfigError");
    expect((err as Error).message).toBe(
      `${file}: no config file there; create one with \`audience-sync init\`, or point to yours with -c FILE`,
    );
  });

  it("names the file in a YAML syntax error", async () => {
    const file = join(dir, "broken.yaml");
    await writeFile(file, "sources:\n  a: [\n");
    await expect(loadConfig(file, { env: ENV })).rejects.toThrow(`${file}: YAML syntax error`);
  });
});

describe("getSync", () => {
  const config = parseObject(build());

  it("returns the sync with its source and destination", () => {
    const { name, sync, source, destination } = getSync(config, "vip-users");
    expect(name).toBe("vip-users");
    expect(sync).toBe(config.syncs["vip-users"]);
    expect(source).toBe(config.sources.warehouse);
    expect(destination).toBe(config.destinations.iterable);
  });

  it("refuses an unknown sync and lists the defined ones", () => {
    const err = configErrorOf(() => getSync(config, "vip"));
    expect(err.message).toBe('unknown sync "vip"; defined syncs: vip-users');
  });

  it("says when no sync is defined", () => {
    const empty = parseConfig("sources: {}\n", { env: {} });
    expect(configErrorOf(() => getSync(empty, "x")).message).toBe(
      'unknown sync "x"; the config defines no syncs: add one under syncs',
    );
  });
});

describe("helpers", () => {
  it("destinationBaseUrl picks baseUrl over the data centre", () => {
    const us = parseObject(build()).destinations.iterable;
    const eu = parseObject(build({ destination: { dataCenter: "EU" }, sync: {} })).destinations
      .iterable;
    const local = parseObject(
      build({ destination: { dataCenter: "EU", baseUrl: "http://127.0.0.1:4010/" } }),
    ).destinations.iterable;
    expect(us && destinationBaseUrl(us)).toBe("https://api.iterable.com");
    expect(eu && destinationBaseUrl(eu)).toBe("https://api.eu.iterable.com");
    expect(local && destinationBaseUrl(local)).toBe("http://127.0.0.1:4010");
  });

  it("splitTableName separates the schema", () => {
    expect(splitTableName("marts.vip")).toEqual({ schema: "marts", name: "vip" });
    expect(splitTableName("vip")).toEqual({ name: "vip" });
  });
});
