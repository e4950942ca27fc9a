// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the tests are about literal ${VAR} references
import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/index.js";

const yaml = `
sources:
  wh: { type: duckdb, path: ./w.duckdb }
destinations:
  it: { type: iterable, apiKey: "\${ITERABLE_API_KEY}", projectType: email }
syncs:
  s: { source: wh, destination: it, table: t, list: { id: 1 }, identifiers: { email: email } }
`;

describe("sections a command does not use", () => {
  it("a missing variable there is left as its reference instead of failing", () => {
    const config = parseConfig(yaml, { env: {}, unusedSections: ["destinations"] });
    expect(config.destinations.it?.apiKey).toBe("${ITERABLE_API_KEY}");
  });

  it("is still an error everywhere else, and without the option", () => {
    expect(() => parseConfig(yaml, { env: {} })).toThrow(/ITERABLE_API_KEY is not set/);
    const withSourceVar = yaml.replace("./w.duckdb", '"${WAREHOUSE}"');
    expect(() => parseConfig(withSourceVar, { env: {}, unusedSections: ["destinations"] })).toThrow(
      /sources\.wh\.path: environment variable WAREHOUSE is not set/,
    );
  });

  it("a malformed reference stays an error", () => {
    const bad = yaml.replace("${ITERABLE_API_KEY}", "${ITERABLE API KEY}");
    expect(() => parseConfig(bad, { env: {}, unusedSections: ["destinations"] })).toThrow(
      /malformed reference/,
    );
  });
});
