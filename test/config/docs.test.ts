import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/index.js";

const DOC = new URL("../../docs/config.md", import.meta.url);

describe("docs/config.md", () => {
  it("has a full example that the parser accepts", async () => {
    const doc = await readFile(DOC, "utf8");
    const example = /```yaml\n([\s\S]*?)```/.exec(doc)?.[1];
    expect(example).toBeDefined();
    const env = {
      DATABASE_URL: "postgres://u:p@127.0.0.1:5432/db",
      MYSQL_PORT: "3306",
      MYSQL_PASSWORD: "secret",
      ITERABLE_API_KEY: "key-1234",
      EMULATOR_API_KEY: "key-5678",
      DBT_SCHEMA: "marts",
    };
    const config = parseConfig(example ?? "", { env, file: "/srv/as/audience-sync.yaml" });
    expect(Object.keys(config.syncs)).toEqual(["vip-users", "churn-risk"]);
    expect(config.sources.shop).toMatchObject({ port: 3306, password: "secret", ssl: true });
    expect(config.syncs["churn-risk"]?.schedule).toEqual({
      type: "basic",
      every: "6h",
      at: "00:30",
    });
  });
});
