/** `audience-sync lists` in process, against the emulator on 127.0.0.1. */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { registerLists } from "../../src/cli/lists.js";
import { runCli } from "../../src/cli/run.js";
import { type Emulator, startEmulator } from "../../src/emulator/index.js";

const KEY = "lists-cmd-key-7c2e91";

let dir: string;
let emulator: Emulator;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "audience-sync-lists-"));
  emulator = await startEmulator({ port: 0, projectType: "hybrid", apiKey: KEY });
});

afterEach(async () => {
  await emulator.close();
  await rm(dir, { recursive: true, force: true });
  process.exitCode = 0;
  vi.restoreAllMocks();
});

async function writeConfig(destinations: Record<string, string>): Promise<string> {
  const lines = ["destinations:"];
  for (const [name, key] of Object.entries(destinations)) {
    lines.push(
      `  ${name}:`,
      "    type: iterable",
      `    apiKey: "${key}"`,
      "    projectType: hybrid",
      `    baseUrl: ${emulator.url}`,
    );
  }
  const file = join(dir, "audience-sync.yaml");
  await writeFile(file, `${lines.join("\n")}\n`);
  return file;
}

async function run(...args: string[]): Promise<{ out: string; err: string; code: number }> {
  let out = "";
  let err = "";
  vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
    out += String(chunk);
    return true;
  });
  vi.spyOn(process.stderr, "write").mockImplementation((chunk) => {
    err += String(chunk);
    return true;
  });
  const program = new Command().name("audience-sync").option("-c, --config <file>", "config file");
  registerLists(program);
  process.exitCode = 0;
  await runCli(program, ["node", "audience-sync", ...args]);
  vi.restoreAllMocks();
  return { out, err, code: Number(process.exitCode ?? 0) };
}

describe("audience-sync lists", () => {
  it("prints the lists as a table", async () => {
    const file = await writeConfig({ iterable: KEY });
    const id = emulator.state.createList("VIP customers", "spend over 1k");
    const { out, code } = await run("-c", file, "lists");
    expect(code).toBe(0);
    expect(out).toMatch(/^\s*ID\s+NAME\s+TYPE\s+CREATED\n/);
    const created = new Date(emulator.state.listCreatedAt(id) ?? 0).toISOString().slice(0, 10);
    expect(out).toContain(`${id}  VIP customers  Standard  ${created}`);
  });

  it("prints JSON with --json, for the named destination", async () => {
    const file = await writeConfig({ prod: KEY, other: KEY });
    const id = emulator.state.createList("A");
    const { out, code } = await run("-c", file, "lists", "prod", "--json");
    expect(code).toBe(0);
    const rows = JSON.parse(out) as { id: number; name: string; type: string; createdAt: string }[];
    expect(rows).toEqual([
      { id, name: "A", type: "Standard", createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) },
    ]);
  });

  it("asks which destination when there are several", async () => {
    const file = await writeConfig({ prod: KEY, other: KEY });
    const { err, code } = await run("-c", file, "lists");
    expect(code).toBe(2);
    expect(err).toContain("name one: prod, other");
  });

  it("says which setting to fix when the key is refused, never printing the key", async () => {
    const wrong = "wrong-key-a1b2c3d4e5";
    const file = await writeConfig({ prod: wrong });
    const { out, err, code } = await run("-c", file, "lists");
    expect(code).toBe(1);
    expect(out).toBe("");
    expect(err).toContain(
      "the API key was refused (401 BadApiKey): check destinations.prod.apiKey / ITERABLE_API_KEY",
    );
    expect(err).not.toContain(wrong);
  });
});
