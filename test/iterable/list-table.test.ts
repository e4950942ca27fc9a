import { describe, expect, it } from "vitest";
import type { DestinationConfig } from "../../src/config/index.js";
import { AuthError, ConfigError, RetryableError } from "../../src/errors.js";
import {
  explainForDestination,
  pickDestination,
  renderListTable,
  toListRows,
} from "../../src/iterable/list-table.js";

const dest = (over: Partial<DestinationConfig> = {}): DestinationConfig => ({
  type: "iterable",
  apiKey: "k-123456",
  dataCenter: "US",
  projectType: "email",
  batchSize: 1000,
  maxBatchBytes: 4_000_000,
  concurrency: 4,
  timeoutMs: 30_000,
  ...over,
});

describe("pickDestination", () => {
  it("takes the only destination when none is named", () => {
    expect(pickDestination({ prod: dest() }, undefined).name).toBe("prod");
  });
  it("takes the named one", () => {
    expect(pickDestination({ a: dest(), b: dest() }, "b").name).toBe("b");
  });
  it("lists the names when ambiguous or unknown", () => {
    expect(() => pickDestination({ a: dest(), b: dest() }, undefined)).toThrow(
      /2 destinations; name one: a, b/,
    );
    expect(() => pickDestination({ a: dest() }, "x")).toThrow(ConfigError);
    expect(() => pickDestination({ a: dest() }, "x")).toThrow(/defined destinations: a/);
    expect(() => pickDestination({}, undefined)).toThrow(/no destinations/);
  });
});

describe("list rows and table", () => {
  const lists = [
    {
      id: 20,
      name: "Later\u001b[2J",
      createdAt: Date.UTC(2025, 1, 3, 4, 5, 6),
      listType: "Dynamic",
    },
    { id: 7, name: "VIP customers", createdAt: Date.UTC(2024, 11, 31), description: "spend" },
  ];
  it("sorts by id, defaults the type, writes ISO dates", () => {
    expect(toListRows(lists)).toEqual([
      {
        id: 7,
        name: "VIP customers",
        type: "Standard",
        description: "spend",
        createdAt: "2024-12-31T00:00:00.000Z",
      },
      { id: 20, name: "Later\u001b[2J", type: "Dynamic", createdAt: "2025-02-03T04:05:06.000Z" },
    ]);
    expect(toListRows([{ id: 1, name: "x" }])[0]?.createdAt).toBeNull();
  });
  it("aligns columns and keeps control characters off the terminal", () => {
    expect(renderListTable(toListRows(lists))).toBe(
      [
        "ID  NAME           TYPE      CREATED",
        " 7  VIP customers  Standard  2024-12-31",
        "20  Later [2J      Dynamic   2025-02-03",
        "",
      ].join("\n"),
    );
    expect(renderListTable([])).toContain("(no lists in this project)");
  });
});

describe("explainForDestination", () => {
  it("names the settings to check, not the key", () => {
    const err = explainForDestination(
      new AuthError("the API key was refused (401 BadApiKey): Disabled API key"),
      "prod",
      dest(),
    );
    expect(err).toBeInstanceOf(AuthError);
    expect(err.message).toMatch(
      /^the API key was refused \(401 BadApiKey\): check destinations\.prod\.apiKey \/ ITERABLE_API_KEY/,
    );
    expect(err.message).toContain("destinations.prod.dataCenter");
    expect(err.message).not.toContain("k-123456");
  });
  it("points network errors at baseUrl when one is set", () => {
    const err = explainForDestination(
      new RetryableError("network error talking to Iterable (ECONNREFUSED)", "network_error"),
      "dev",
      dest({ baseUrl: "http://127.0.0.1:9" }),
    );
    expect(err.message).toContain("check destinations.dev.baseUrl");
  });
});
