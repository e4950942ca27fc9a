import { readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { REPO, runCli } from "./helpers.js";

describe("docs/commands.md", () => {
  it("has a section for every command the CLI registers, and the exit codes", async () => {
    const help = await runCli(["--help"]);
    expect(help.code).toBe(0);
    const commands = [...(help.stdout.split("Commands:")[1]?.matchAll(/^ {2}([a-z]+)/gm) ?? [])]
      .map((m) => m[1])
      .filter((c) => c !== "help");
    expect(commands.length).toBeGreaterThanOrEqual(11);
    const doc = await readFile(path.join(REPO, "docs/commands.md"), "utf8");
    const headings = [...doc.matchAll(/^## (\S+)$/gm)].map((m) => m[1]);
    for (const c of commands) expect(headings, `section for ${c}`).toContain(c);
    for (const line of ["| 0 |", "| 1 |", "| 2 |", "| 3 |"]) expect(doc).toContain(line);
  });
});
