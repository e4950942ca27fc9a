import { describe, expect, it } from "vitest";
import { interpolateEnv, parseConfig } from "../../src/config/index.js";
import { build, configErrorOf, ENV, parseObject, ref, refusal } from "./helpers.js";

describe("environment variable interpolation", () => {
  it("substitutes variables in every string value", () => {
    const config = parseObject(
      build({
        source: { path: `${ref("DATA_DIR")}/wh.duckdb`, stateSchema: ref("STATE") },
        sync: { model: `select * from ${ref("SCHEMA")}.vip where a = '${ref("A")}'` },
      }),
      { ...ENV, DATA_DIR: "/data", STATE: "as_state", SCHEMA: "marts", A: "x" },
    );
    expect(config.sources.warehouse).toMatchObject({
      path: "/data/wh.duckdb",
      stateSchema: "as_state",
    });
    expect(config.destinations.iterable?.apiKey).toBe(ENV.ITERABLE_API_KEY);
    expect(config.syncs["vip-users"]?.model).toBe("select * from marts.vip where a = 'x'");
  });

  it("reads process.env when no env is given", () => {
    const name = "AUDIENCE_SYNC_TEST_CONFIG_KEY";
    process.env[name] = "from-process-env";
    try {
      const config = parseConfig(
        `destinations:\n  it: { type: iterable, apiKey: "${ref(name)}", projectType: hybrid }\n`,
      );
      expect(config.destinations.it?.apiKey).toBe("from-process-env");
    } finally {
      delete process.env[name];
    }
  });

  it("refuses a missing variable, naming it and where it was used", () => {
    expect(refusal(build(), {})).toBe(
      `destinations.iterable.apiKey: environment variable ITERABLE_API_KEY is not set (used here as ${ref("ITERABLE_API_KEY")}); export it, or write $${ref("ITERABLE_API_KEY")} for the literal text`,
    );
  });

  it("reports every missing variable", () => {
    const config = build({ sync: { model: `select ${ref("COLS")} from ${ref("TABLE")}` } });
    const lines = refusal(config, ENV).split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^syncs\.vip-users\.model: environment variable COLS is not set/);
    expect(lines[1]).toMatch(/^syncs\.vip-users\.model: environment variable TABLE is not set/);
  });

  it("keeps $${ as a literal ${", () => {
    const model = `select '$${ref("NOT_A_VAR")}' as a, '$$' as b, 'a$b' as c, $1`;
    const config = parseObject(build({ sync: { model } }));
    expect(config.syncs["vip-users"]?.model).toBe(
      `select '${ref("NOT_A_VAR")}' as a, '$$' as b, 'a$b' as c, $1`,
    );
  });

  it("refuses a malformed reference", () => {
    expect(refusal(build({ sync: { model: "select '${not closed'" } }))).toBe(
      `syncs.vip-users.model: malformed reference "${"${"}not closed'"; write ${ref("NAME")} (letters, digits and _) for an environment variable, or $${"${"} for a literal ${"${"}`,
    );
    expect(refusal(build({ sync: { model: `select ${ref("1X")}` } }))).toMatch(
      /^syncs\.vip-users\.model: malformed reference/,
    );
  });

  it("cannot inject YAML: a value stays one string", () => {
    const evil = "x\nsyncs:\n  other: {}\n";
    const config = parseObject(build({ sync: { model: ref("EVIL") } }), { ...ENV, EVIL: evil });
    expect(config.syncs["vip-users"]?.model).toBe(evil.trim());
    expect(Object.keys(config.syncs)).toEqual(["vip-users"]);
  });

  it("does not interpolate keys", () => {
    const tree = { [ref("K")]: ref("V") };
    const result = interpolateEnv(tree, { K: "key", V: "value" });
    expect(result.value).toEqual({ [ref("K")]: "value" });
    expect(result.issues).toEqual([]);
  });

  it("converts a variable to a number or boolean where the setting is one", () => {
    const text = [
      "sources:",
      "  pg:",
      "    type: postgres",
      `    host: ${ref("PGHOST")}`,
      `    port: ${ref("PGPORT")}`,
      `    ssl: ${ref("PGSSL")}`,
      "destinations:",
      "  it:",
      "    type: iterable",
      `    apiKey: ${ref("KEY")}`,
      "    projectType: hybrid",
      `    concurrency: ${ref("CONCURRENCY")}`,
      "",
    ].join("\n");
    const env = {
      PGHOST: "127.0.0.1",
      PGPORT: "5433",
      PGSSL: "true",
      KEY: "12345",
      CONCURRENCY: "8",
    };
    const config = parseConfig(text, { env });
    expect(config.sources.pg).toMatchObject({ host: "127.0.0.1", port: 5433, ssl: true });
    // A key made of digits stays text: only number and boolean settings are converted.
    expect(config.destinations.it).toMatchObject({ apiKey: "12345", concurrency: 8 });
  });

  it("still refuses a variable that is not a number where one is needed", () => {
    const text = `sources:\n  pg:\n    type: postgres\n    host: h\n    port: ${ref("PGPORT")}\n`;
    const err = configErrorOf(() => parseConfig(text, { env: { PGPORT: "five" } }));
    expect(err.message).toBe("sources.pg.port: must be a number, not text");
  });

  it("does not convert numbers written as text in the file itself", () => {
    const text = `sources:\n  pg:\n    type: postgres\n    host: h\n    port: "5432"\n`;
    expect(configErrorOf(() => parseConfig(text, { env: {} })).message).toBe(
      "sources.pg.port: must be a number, not text",
    );
  });
});
