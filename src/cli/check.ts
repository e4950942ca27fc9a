/** `audience-sync check [SYNC] [--json]`: a checklist per sync, every problem with its fix. */
import type { Command } from "commander";
import { type Config, loadConfig } from "../config/index.js";
import { ConfigError } from "../errors.js";
import { type CheckReport, checkConfig } from "../sync/check.js";
import { EXIT } from "./run.js";

const MARK = { pass: "✓", fail: "✗", skip: "-" } as const;

export function renderCheckReport(report: CheckReport): string {
  const lines: string[] = [];
  for (const s of report.syncs) {
    lines.push(`sync ${s.sync}`);
    const width = Math.max(...s.items.map((i) => i.title.length));
    for (const item of s.items) {
      lines.push(`  ${MARK[item.status]} ${item.title.padEnd(width)}  ${item.detail}`);
      if (item.fix) lines.push(`      fix: ${item.fix}`);
    }
    lines.push("");
  }
  const problems = report.syncs.reduce(
    (n, s) => n + s.items.filter((i) => i.status === "fail").length,
    0,
  );
  lines.push(
    report.ok
      ? `all checks passed (${report.syncs.length} sync${report.syncs.length === 1 ? "" : "s"})`
      : `${problems} problem${problems === 1 ? "" : "s"} found; fix ${problems === 1 ? "it" : "them"} and run audience-sync check again`,
  );
  return `${lines.join("\n")}\n`;
}

/** Runs check on a loaded config, prints it, and returns the exit code. Used by init too. */
export async function runCheck(
  config: Config,
  name: string | undefined,
  opts: { json?: boolean; out?: NodeJS.WritableStream } = {},
): Promise<number> {
  if (Object.keys(config.syncs).length === 0) {
    throw new ConfigError("the config defines no syncs: add one under syncs");
  }
  const report = await checkConfig(config, name !== undefined ? [name] : []);
  const out = opts.out ?? process.stdout;
  out.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : renderCheckReport(report));
  return report.ok ? EXIT.ok : EXIT.failed;
}

export function registerCheck(program: Command): void {
  program
    .command("check")
    .description(
      "check config, source, model columns, API key, list and schedule of each sync; exit 0 only when all pass",
    )
    .argument("[sync]", "name under syncs (default: every sync)")
    .option("--json", "print the checklist as JSON")
    .action(async (name: string | undefined, opts: { json?: boolean }) => {
      const config = await loadConfig(program.opts<{ config: string }>().config);
      process.exitCode = await runCheck(config, name, opts);
    });
}
