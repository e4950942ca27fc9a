import { readFile } from "node:fs/promises";
import { Command } from "commander";
import { afterEach, describe, expect, it, vi } from "vitest";
import { registerSchema } from "../../src/cli/schema.js";
import { configJsonSchema } from "../../src/config/index.js";
import { build } from "./helpers.js";

const COMMITTED = new URL("../../schema/audience-sync.schema.json", import.meta.url);

describe("configJsonSchema", () => {
  it("equals the committed schema/audience-sync.schema.json", async () => {
    const committed: unknown = JSON.parse(await readFile(COMMITTED, "utf8"));
    // On failure: audience-sync schema > schema/audience-sync.schema.json
    expect(committed).toEqual(configJsonSchema());
  });

  it("describes the input: settings with defaults are optional", () => {
    const schema = configJsonSchema();
    const text = JSON.stringify(schema);
    expect(schema.$schema).toBe("http://json-schema.org/draft-07/schema#");
    expect(text).toContain('"required":["type","apiKey","projectType"]');
    expect(text).toContain('"default":"mirror"');
    expect(text).not.toContain(
      '"required":["source","destination","list","identifiers","updateExistingUsersOnly"',
    );
  });

  it("accepts the keys a valid config uses", () => {
    // Every key written in a valid config is a property the schema declares.
    const text = JSON.stringify(configJsonSchema());
    const keys = new Set<string>();
    const collect = (node: unknown) => {
      if (node === null || typeof node !== "object") return;
      for (const [key, value] of Object.entries(node)) {
        keys.add(key);
        collect(value);
      }
    };
    const config = build({ sync: { schedule: { type: "basic", every: "6h", at: "06:30" } } });
    collect({
      sources: config.sources.warehouse,
      d: config.destinations.iterable,
      s: config.syncs["vip-users"],
    });
    for (const key of keys) {
      if (key === "s" || key === "d") continue;
      expect(text, key).toContain(`"${key}":`);
    }
  });
});

describe("audience-sync schema", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("prints the JSON Schema", async () => {
    const out: string[] = [];
    vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
      out.push(String(chunk));
      return true;
    });
    const program = new Command().exitOverride();
    registerSchema(program);
    await program.parseAsync(["node", "audience-sync", "schema"]);
    expect(JSON.parse(out.join(""))).toEqual(configJsonSchema());
  });
});
