/** `audience-sync demo [--dir DIR] [--keep] [--json]`: see it work in a minute, nothing to set up. */
import path from "node:path";
import type { Command } from "commander";
import { SECOND_ROUND } from "../demo/data.js";
import { DEMO_FILES, DEMO_SYNCS, type DemoResult, type DemoStep, runDemo } from "../demo/run.js";
import { renderRunReport } from "./format.js";
import { EXIT } from "./run.js";
import { runOne } from "./sync.js";

const n = (x: number) => x.toLocaleString("en-US");

/** A path as the user would type it from here. */
function shown(p: string): string {
  const rel = path.relative(process.cwd(), p);
  const out = rel === "" ? "." : rel.startsWith("..") || path.isAbsolute(rel) ? p : rel;
  return /[\s"'$]/.test(out) ? JSON.stringify(out) : out;
}

function stepText(step: DemoStep): string {
  switch (step.kind) {
    case "prepared":
      return [
        `audience-sync demo in ${shown(step.dir)}`,
        `  warehouse  ${shown(path.join(step.dir, DEMO_FILES.warehouse))}: vip_customers (2,000 rows), newsletter_subscribers (500 rows)`,
        `  Iterable   ${step.url}: the local emulator, a hybrid project`,
        `  config     ${shown(path.join(step.dir, DEMO_FILES.config))}: syncs ${DEMO_SYNCS.join(" and ")}`,
        "",
        "== first run: every valid row is subscribed ==",
        "",
      ].join("\n");
    case "synced":
      return `${renderRunReport(step.report)}\n`;
    case "changed":
      return [
        "== the audience changes in the warehouse ==",
        ...SECOND_ROUND.map((c) => `  ${c.sync.padEnd(10)} ${c.what}: ${c.expect}`),
        "",
        "== second run: only the changes are sent ==",
        "",
      ].join("\n");
  }
}

export function renderDemoEnd(r: DemoResult, kept: boolean): string {
  const lines: string[] = ["== what the lists hold now =="];
  for (const l of r.lists) {
    const sample = l.sample
      .map((m) => [m.email, m.userId].filter((v) => v !== undefined).join(" "))
      .join("; ");
    lines.push(
      `  ${l.name} (id ${l.id}, sync ${l.sync}): ${n(l.size)} members, e.g. ${sample || "-"}`,
    );
  }
  const cfg = shown(r.configPath);
  const db = shown(r.warehousePath);
  const cmd = (args: string) => `audience-sync -c ${cfg} ${args}`;
  lines.push(
    "",
    "== where to look next ==",
    "  (audience-sync not on your PATH? from the repository run `node dist/cli/main.js` instead, or `npm install -g .` once)",
    `  the config           ${cfg}`,
    kept
      ? `  the emulator keeps running at ${r.emulatorUrl} until Ctrl-C; in another terminal:`
      : "  the demo's Iterable (the emulator) stopped with the demo; to resume it with the same key, port and lists, in another terminal:",
  );
  if (!kept) {
    lines.push(
      `    ${r.apiKeyVariable}=${r.apiKey} audience-sync emulator --port ${r.emulatorPort} --project-type hybrid --state ${shown(r.emulatorStatePath)}`,
      "  then, in this terminal (the key is the demo's own, not an Iterable key):",
    );
  }
  lines.push(
    `    export ${r.apiKeyVariable}=${r.apiKey}`,
    `    ${cmd("runs vip-users")}        # run history, from the warehouse`,
    `    ${cmd("failures vip-users")}    # the failed records of the last run, and why`,
    `    ${cmd("plan vip-users")}        # what the next run would send (needs the emulator)`,
    `    ${cmd("check")}                 # every sync's checklist (needs the emulator)`,
    `    ${cmd("sync --all")}            # run both syncs again (needs the emulator)`,
    "  in the warehouse, with any DuckDB client (e.g. the duckdb CLI):",
    `    duckdb ${db} "select sync_name, run_id, status, succeeded_subscribe, succeeded_unsubscribe, failed_subscribe from audience_sync.sync_runs order by sync_name, run_id"`,
    `    duckdb ${db} "select sync_name, run_id, operation, email, user_id, error_code, error_message from audience_sync.sync_logs where status = 'failed'"`,
    "  then point audience-sync at your own warehouse and Iterable project: audience-sync init",
    "",
  );
  return lines.join("\n");
}

/** The demo worked when every first run succeeded and no second run failed outright (its
 *  failed records are part of the show). */
export function demoWorked(r: DemoResult): boolean {
  return (
    r.first.every((x) => x.status === "succeeded") &&
    r.second.every((x) => x.status === "succeeded" || x.status === "completed_with_failures")
  );
}

export function registerDemo(program: Command): void {
  program
    .command("demo")
    .description(
      "a DuckDB warehouse with a sample audience, a local Iterable emulator and two syncs, run twice",
    )
    .option(
      "--dir <dir>",
      "directory for the demo's files (cleared if an earlier demo made it)",
      "./audience-sync-demo",
    )
    .option("--keep", "keep the emulator running after the demo, until Ctrl-C")
    .option("--json", "print a JSON summary (both runs' reports, the lists) instead of text")
    .action(async (opts: { dir: string; keep?: boolean; json?: boolean }) => {
      const out = (text: string) => {
        if (!opts.json) process.stdout.write(text);
      };
      const result = await runDemo({
        dir: opts.dir,
        keepEmulator: opts.keep === true,
        runSync: (config, name) => runOne(config, name, { progress: false }),
        onStep: (step) => out(stepText(step)),
      });
      const worked = demoWorked(result);
      if (opts.json) {
        const { emulator: _emulator, ...summary } = result;
        process.stdout.write(`${JSON.stringify({ ok: worked, ...summary }, null, 2)}\n`);
      } else {
        out(renderDemoEnd(result, result.emulator !== null));
        if (!worked) {
          process.stderr.write(
            "error: the demo did not run as expected; the reports above say why (AUDIENCE_SYNC_DEBUG=1 for more)\n",
          );
        }
      }
      process.exitCode = worked ? EXIT.ok : EXIT.failed;
      const em = result.emulator;
      if (em) {
        await new Promise<void>((resolve) => {
          process.once("SIGINT", () => resolve());
          process.once("SIGTERM", () => resolve());
        });
        await em.close();
        process.stderr.write(
          `emulator stopped; state saved to ${shown(result.emulatorStatePath)}\n`,
        );
      }
    });
}
