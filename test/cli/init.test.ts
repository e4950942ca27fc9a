import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type InitRun, type Prompter, parseScheduleFlag, runInit } from "../../src/cli/init.js";
import { loadConfig } from "../../src/config/index.js";
import type { Emulator } from "../../src/emulator/index.js";
import { duckdbExec, emulator, runCli, TEST_KEY, tempDir } from "./helpers.js";

/** Answers questions in order; each answer names a pattern its question must match, so the
 *  test also pins the order of the setup. */
function scripted(answers: [RegExp, unknown][]): Prompter & { asked: string[] } {
  const asked: string[] = [];
  const next = (message: string, choices?: { value: unknown }[]): unknown => {
    asked.push(message);
    const a = answers.shift();
    if (!a) throw new Error(`unexpected question: ${message}`);
    const [pattern, value] = a;
    if (!pattern.test(message)) throw new Error(`asked "${message}", expected ${pattern}`);
    if (typeof value === "function") return (value as (c: unknown) => unknown)(choices);
    return value;
  };
  return {
    asked,
    input: async (q) => {
      const v = next(q.message) as string | undefined;
      const value = v ?? q.default ?? "";
      const ok = q.validate?.(value) ?? true;
      if (ok !== true) throw new Error(`answer "${value}" to "${q.message}" refused: ${ok}`);
      return value;
    },
    select: async <T>(q: { message: string; choices: { value: T }[]; default?: T }) => {
      const v = next(q.message, q.choices);
      return (v === undefined ? q.default : v) as T;
    },
    confirm: async (q) => {
      const v = next(q.message) as boolean | undefined;
      return v ?? q.default ?? false;
    },
  };
}

function sink(): { stream: Writable; text(): string } {
  let text = "";
  const stream = new Writable({
    write(chunk, _enc, cb) {
      text += String(chunk);
      cb();
    },
  });
  return { stream, text: () => text };
}

describe("audience-sync init --yes", () => {
  let tmp: { dir: string; cleanup(): Promise<void> };
  beforeAll(async () => {
    tmp = await tempDir("as-init-");
  });
  afterAll(async () => {
    await tmp?.cleanup();
  });

  it("writes a config that loads, names the key variable and never holds the key", async () => {
    const key = "real-looking-key-0123456789abcdef";
    const r = await runCli(
      [
        "init",
        "--yes",
        "--project-type",
        "hybrid",
        "--list-name",
        "VIP customers",
        "--model",
        "select email, user_id from vip",
        "--schedule",
        "cron 0 6 * * *",
        "--api-key-env",
        "MY_ITERABLE_KEY",
        "--no-check",
      ],
      { cwd: tmp.dir, env: { MY_ITERABLE_KEY: key } },
    );
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const file = path.join(tmp.dir, "audience-sync.yaml");
    const text = await readFile(file, "utf8");
    expect(text).not.toContain(key);
    expect(text).toContain(`apiKey: \${MY_ITERABLE_KEY}`);
    const config = await loadConfig(file, { env: { MY_ITERABLE_KEY: key } });
    const sync = config.syncs["vip-customers"];
    expect(sync?.list).toEqual({ create: { name: "VIP customers" } });
    expect(sync?.identifiers).toEqual({ email: "email", userId: "user_id" });
    expect(sync?.schedule).toEqual({ type: "cron", expression: "0 6 * * *" });
    expect(config.destinations.iterable?.apiKey).toBe(key);
    expect(config.destinations.iterable?.projectType).toBe("hybrid");

    const again = await runCli(
      ["init", "--yes", "--project-type", "email", "--list-id", "7", "--table", "t"],
      {
        cwd: tmp.dir,
      },
    );
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("--force");
    expect(await readFile(file, "utf8")).toBe(text);
  });

  it("refuses what the config would refuse, before writing anything", async () => {
    const r = await runCli(
      [
        "init",
        "--yes",
        "-c",
        "eu.yaml",
        "--project-type",
        "email",
        "--data-center",
        "EU",
        "--list-id",
        "5",
        "--table",
        "t",
      ],
      { cwd: tmp.dir },
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("EU projects cannot be email-based");
    const missing = await runCli(
      ["init", "--yes", "-c", "x.yaml", "--list-id", "5", "--table", "t"],
      {
        cwd: tmp.dir,
      },
    );
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("--project-type");
  });

  it("runs check after writing when the key is set, and exits with its result", async () => {
    const em = await emulator("email");
    try {
      const listId = em.state.createList("Newsletter");
      await duckdbExec(
        path.join(tmp.dir, "wh.duckdb"),
        "create or replace table readers as select 'a@example.com' as email",
      );
      const r = await runCli(
        [
          "init",
          "--yes",
          "-c",
          "checked.yaml",
          "--project-type",
          "email",
          "--base-url",
          em.url,
          "--list-id",
          String(listId),
          "--table",
          "readers",
          "--duckdb-path",
          "./wh.duckdb",
          "--sync-name",
          "newsletter",
        ],
        { cwd: tmp.dir, env: { ITERABLE_API_KEY: TEST_KEY } },
      );
      expect(r.stderr).toBe("");
      expect(r.stdout).toContain("wrote checked.yaml");
      expect(r.stdout).toContain("all checks passed");
      expect(r.code).toBe(0);
    } finally {
      await em.close();
    }
  });
});

describe("audience-sync init, interactive", () => {
  let em: Emulator;
  let tmp: { dir: string; cleanup(): Promise<void> };
  beforeAll(async () => {
    em = await emulator("hybrid");
    tmp = await tempDir("as-init-i-");
  });
  afterAll(async () => {
    await em?.close();
    await tmp?.cleanup();
  });

  it("asks in the seed's order, picks a list after a refresh, writes and checks", async () => {
    em.state.createList("Old list");
    let added = 0;
    const prompter = scripted([
      [/^Destination name/, "iterable"],
      [/^Environment variable that holds/, "ITERABLE_API_KEY"],
      [/^Data center/, "US"],
      [/^Project type/, "hybrid"],
      [
        /^List/,
        (choices: { value: { kind: string } }[]) => {
          // the list made meanwhile in Iterable shows up after a refresh
          added = em.state.createList("Made meanwhile");
          return choices.find((c) => c.value.kind === "refresh")?.value;
        },
      ],
      [
        /^List/,
        (choices: { value: { kind: string; id?: number } }[]) =>
          choices.find((c) => c.value.id === added)?.value,
      ],
      [/^Update existing users only/, true],
      [/^Column holding the email/, "email"],
      [/^Column holding the userId/, "user_id"],
      [/^Warehouse/, "duckdb"],
      [/^DuckDB file/, "./w.duckdb"],
      [/^Sync name/, "vip"],
      [/^The audience is/, "model"],
      [/^SQL query/, "select email, user_id from vip"],
      [/^Schedule/, "basic"],
      [/^Every/, "6h"],
      [/^At/, "06:30"],
      [/^Retain sync logs/, true],
      [/^Sync log retention/, "3"],
      [/^Snapshot tables/, "4"],
      [/^Retry failed records/, false],
    ]);
    await duckdbExec(
      path.join(tmp.dir, "w.duckdb"),
      "create or replace table vip as select 'a@example.com' as email, 'u1' as user_id",
    );
    const out = sink();
    const file = path.join(tmp.dir, "audience-sync.yaml");
    const run: InitRun = {
      file,
      flags: { baseUrl: em.url, retainSyncLogs: true, retryFailedRecords: true, check: true },
      env: { ITERABLE_API_KEY: TEST_KEY },
      prompter,
      out: out.stream,
    };
    const code = await runInit(run);
    expect(out.text()).toContain("all checks passed");
    expect(code).toBe(0);
    const text = await readFile(file, "utf8");
    expect(text).not.toContain(TEST_KEY);
    const config = await loadConfig(file, { env: { ITERABLE_API_KEY: TEST_KEY } });
    const sync = config.syncs.vip;
    expect(sync?.list).toEqual({ id: added });
    expect(sync?.updateExistingUsersOnly).toBe(true);
    expect(sync?.schedule).toEqual({ type: "basic", every: "6h", at: "06:30" });
    expect(sync?.observability).toEqual({
      retainSyncLogs: true,
      syncLogRetentionDays: 3,
      snapshotRetention: 4,
      retryFailedRecords: false,
    });
    expect(config.destinations.iterable?.baseUrl).toBe(em.url);
  });

  it("without the key asks for a new list; email projects are never asked about userIds", async () => {
    const prompter = scripted([
      [/^Destination name/, undefined],
      [/^Environment variable/, "NOT_SET_KEY"],
      [/^Data center/, "US"],
      [/^Project type/, "email"],
      [/^List$/, "create"],
      [/^New list name/, "Weekly digest"],
      [/^Description/, ""],
      [/^Column holding the email/, "mail"],
      [/^Warehouse/, "postgres"],
      [/^Read the connection URL from an environment variable/, true],
      [/^Environment variable holding the URL/, "PG_URL"],
      [/^Sync name/, undefined],
      [/^The audience is/, "table"],
      [/^Table/, "marts.readers"],
      [/^Schedule/, "manual"],
      [/^Retain sync logs/, false],
      [/^Snapshot tables/, undefined],
      [/^Retry failed records/, undefined],
    ]);
    const out = sink();
    const file = path.join(tmp.dir, "email.yaml");
    const code = await runInit({ file, flags: {}, env: {}, prompter, out: out.stream });
    expect(code).toBe(0);
    expect(out.text()).toContain("$NOT_SET_KEY is not set");
    expect(out.text()).toContain("set $NOT_SET_KEY and $PG_URL");
    const config = await loadConfig(file, {
      env: { NOT_SET_KEY: "k", PG_URL: "postgres://u:p@localhost/db" },
    });
    const sync = config.syncs["weekly-digest"];
    expect(sync?.identifiers).toEqual({ email: "mail" });
    expect(sync?.table).toBe("marts.readers");
    expect(sync?.observability.retainSyncLogs).toBe(false);
    expect(config.sources.warehouse).toMatchObject({
      type: "postgres",
      url: "postgres://u:p@localhost/db",
    });
    expect(await readFile(file, "utf8")).toContain(`url: \${PG_URL}`);
  });

  it("refuses to overwrite without --force", async () => {
    const file = path.join(tmp.dir, "exists.yaml");
    await writeFile(file, "# mine\n");
    await expect(
      runInit({ file, flags: {}, env: {}, prompter: scripted([]), out: sink().stream }),
    ).rejects.toThrow(/--force/);
    expect(await readFile(file, "utf8")).toBe("# mine\n");
  });
});

describe("parseScheduleFlag", () => {
  it("reads the three forms and refuses others", () => {
    expect(parseScheduleFlag("manual")).toEqual({ type: "manual" });
    expect(parseScheduleFlag("every 30m")).toEqual({ type: "basic", every: "30m" });
    expect(parseScheduleFlag("every 6h at 06:30")).toEqual({
      type: "basic",
      every: "6h",
      at: "06:30",
    });
    expect(parseScheduleFlag("cron 0 6 * * *")).toEqual({ type: "cron", expression: "0 6 * * *" });
    expect(() => parseScheduleFlag("hourly")).toThrow(/manual/);
    expect(() => parseScheduleFlag("every 6x")).toThrow(/duration/);
    expect(() => parseScheduleFlag("every 6h at 25:00")).toThrow(/HH:MM/);
    expect(() => parseScheduleFlag("cron 0 6 * *")).toThrow(/cron/);
  });
});
