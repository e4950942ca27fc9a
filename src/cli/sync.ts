/** `sync`, `plan`, `runs`, `failures`: run syncs and read their history back from the warehouse. */
import type { Command } from "commander";
import { type Config, getSync, loadConfig } from "../config/index.js";
import { ConfigError, FAILURE_CODES } from "../errors.js";
import { openSource } from "../sources/index.js";
import { ensureState, listFailures, listRuns } from "../state/store.js";
import { withSync } from "../sync/context.js";
import { dryRun } from "../sync/dry-run.js";
import { failedReport, type RunReport, reportOf, runSync } from "../sync/run.js";
import { duration, renderPlanReport, renderRunReport } from "./format.js";
import { progressReporter } from "./progress.js";
import { EXIT } from "./run.js";
import { cancellationSignal } from "./signals.js";

const configOf = (program: Command) => loadConfig(program.opts<{ config: string }>().config);
/** `runs` and `failures` read the warehouse only: they need no API key in the environment. */
const warehouseConfigOf = (program: Command) =>
  loadConfig(program.opts<{ config: string }>().config, { unusedSections: ["destinations"] });

function exitFor(report: RunReport): number {
  // A sync whose config is wrong (a mapped column missing from the model) is a usage error.
  if (report.error?.code === "config_error") return EXIT.usage;
  switch (report.status) {
    case "succeeded":
      return EXIT.ok;
    case "completed_with_failures":
      return EXIT.withFailures;
    default:
      return EXIT.failed;
  }
}

/** Runs one sync and returns its report, also when the run failed. */
export async function runOne(
  config: Config,
  name: string,
  opts: { fullResync?: boolean; signal?: AbortSignal; progress?: boolean },
): Promise<RunReport> {
  const bar = progressReporter(opts.progress === true);
  try {
    return await withSync(config, name, ({ resolved, source, api }) =>
      runSync(
        resolved,
        { api, source },
        {
          fullResync: opts.fullResync === true,
          ...(opts.signal ? { signal: opts.signal } : {}),
          onProgress: (p) => bar.update(p),
        },
      ),
    );
  } catch (err) {
    return (
      reportOf(err) ??
      failedReport(name, opts.fullResync === true, err, [
        config.destinations[config.syncs[name]?.destination ?? ""]?.apiKey ?? "",
      ])
    );
  } finally {
    bar.stop();
  }
}

export function registerSync(program: Command): void {
  program
    .command("sync")
    .description("run a sync now: subscribe new rows, unsubscribe removed ones")
    .argument("[sync]", "name under syncs")
    .option("--all", "run every sync of the config, one after the other")
    .option("--full-resync", "ignore the last snapshot: subscribe every valid row again")
    .option("--json", "print one JSON report on stdout and nothing else")
    .action(
      async (
        name: string | undefined,
        opts: { all?: boolean; fullResync?: boolean; json?: boolean },
      ) => {
        const config = await configOf(program);
        const names = opts.all ? Object.keys(config.syncs) : name ? [name] : [];
        if (names.length === 0) {
          throw new ConfigError(
            `name a sync or pass --all; defined syncs: ${Object.keys(config.syncs).join(", ") || "(none)"}`,
          );
        }
        if (name && opts.all) throw new ConfigError("name a sync or pass --all, not both");
        for (const n of names) getSync(config, n);
        const cancel = cancellationSignal();
        const reports: RunReport[] = [];
        try {
          for (const n of names) {
            if (cancel.signal.aborted) break;
            const report = await runOne(config, n, {
              fullResync: opts.fullResync === true,
              signal: cancel.signal,
              progress: !opts.json,
            });
            reports.push(report);
            if (!opts.json) process.stdout.write(renderRunReport(report));
          }
        } finally {
          cancel.dispose();
        }
        if (opts.json) {
          process.stdout.write(
            `${JSON.stringify(opts.all ? { runs: reports } : reports[0], null, 2)}\n`,
          );
        }
        const codes = reports.map(exitFor);
        process.exitCode = codes.includes(EXIT.usage)
          ? EXIT.usage
          : codes.includes(EXIT.failed)
            ? EXIT.failed
            : codes.includes(EXIT.withFailures)
              ? EXIT.withFailures
              : EXIT.ok;
      },
    );

  program
    .command("plan")
    .description("dry run: what a sync would send, without sending anything")
    .argument("<sync>", "name under syncs")
    .option(
      "--offline",
      "do not ask Iterable for the list (plan from the config and the state schema)",
    )
    .option("--json", "print the plan as JSON")
    .action(async (name: string, opts: { json?: boolean; offline?: boolean }) => {
      const config = await configOf(program);
      const report = await withSync(config, name, ({ resolved, source, api }) =>
        dryRun(resolved, { api: opts.offline ? null : api, source }),
      );
      process.stdout.write(
        opts.json ? `${JSON.stringify(report, null, 2)}\n` : renderPlanReport(report),
      );
    });

  program
    .command("runs")
    .description("the run history of a sync, from the warehouse")
    .argument("<sync>", "name under syncs")
    .option("--limit <n>", "how many runs, newest first", "20")
    .option("--json", "print JSON")
    .action(async (name: string, opts: { limit: string; json?: boolean }) => {
      const config = await warehouseConfigOf(program);
      const resolved = getSync(config, name);
      const limit = Number.parseInt(opts.limit, 10);
      if (!Number.isInteger(limit) || limit < 1)
        throw new ConfigError("--limit must be a positive integer");
      const source = await openSource(resolved.source, { name: resolved.sync.source });
      try {
        await ensureState(source);
        const runs = await listRuns(source, name, limit);
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(runs, null, 2)}\n`);
          return;
        }
        if (runs.length === 0) {
          process.stdout.write(`no runs of ${name} yet: audience-sync sync ${name}\n`);
          return;
        }
        const rows = runs.map((r) => [
          String(r.runId),
          r.status,
          r.startedAt ?? "",
          r.startedAt && r.finishedAt
            ? duration(Date.parse(r.finishedAt) - Date.parse(r.startedAt))
            : "",
          `${r.succeededSubscribe ?? 0}/${r.plannedSubscribe ?? 0}`,
          `${r.succeededUnsubscribe ?? 0}/${r.plannedUnsubscribe ?? 0}`,
          String((r.failedSubscribe ?? 0) + (r.failedUnsubscribe ?? 0)),
          r.error ?? "",
        ]);
        process.stdout.write(
          table(
            [
              "run",
              "status",
              "started (UTC)",
              "took",
              "subscribed",
              "unsubscribed",
              "failed",
              "error",
            ],
            rows,
          ),
        );
      } finally {
        await source.close();
      }
    });

  program
    .command("failures")
    .description("failed records of a sync (latest run by default), from the warehouse's sync logs")
    .argument("<sync>", "name under syncs")
    .option("--run <id>", "run id (default: the latest run)")
    .option("--code <code>", `only this failure code (${FAILURE_CODES.join(", ")})`)
    .option("--limit <n>", "at most this many records", "1000")
    .option("--json", "print JSON")
    .action(
      async (
        name: string,
        opts: { run?: string; code?: string; limit: string; json?: boolean },
      ) => {
        const config = await warehouseConfigOf(program);
        const resolved = getSync(config, name);
        if (opts.code && !(FAILURE_CODES as readonly string[]).includes(opts.code)) {
          throw new ConfigError(
            `unknown failure code "${opts.code}"; known codes: ${FAILURE_CODES.join(", ")}`,
          );
        }
        const source = await openSource(resolved.source, { name: resolved.sync.source });
        try {
          await ensureState(source);
          let runId = opts.run !== undefined ? Number.parseInt(opts.run, 10) : undefined;
          if (opts.run !== undefined && !Number.isInteger(runId))
            throw new ConfigError("--run must be a run id (audience-sync runs shows them)");
          if (runId === undefined) runId = (await listRuns(source, name, 1))[0]?.runId;
          if (runId === undefined) {
            process.stdout.write(opts.json ? "[]\n" : `no runs of ${name} yet\n`);
            return;
          }
          const rows = await listFailures(source, name, {
            runId,
            ...(opts.code ? { code: opts.code } : {}),
            limit: Number.parseInt(opts.limit, 10) || 1000,
          });
          if (opts.json) {
            process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
            return;
          }
          if (rows.length === 0) {
            process.stdout.write(
              resolved.sync.observability.retainSyncLogs
                ? `run ${runId} of ${name} has no failed records${opts.code ? ` with code ${opts.code}` : ""}\n`
                : `run ${runId}: sync logs are off for ${name} (observability.retainSyncLogs: false)\n`,
            );
            return;
          }
          process.stdout.write(
            table(
              ["run", "operation", "email", "userId", "code", "message"],
              rows.map((r) => [
                String(r.runId),
                r.operation,
                r.email ?? "",
                r.userId ?? "",
                r.errorCode ?? "",
                r.errorMessage ?? "",
              ]),
            ),
          );
        } finally {
          await source.close();
        }
      },
    );
}

export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) =>
    Math.min(60, Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length))),
  );
  const line = (cells: string[]) =>
    cells
      .map((c, i) => {
        const w = widths[i] ?? 0;
        return (c.length > w ? `${c.slice(0, w - 1)}…` : c).padEnd(w);
      })
      .join("  ")
      .trimEnd();
  return `${[line(head), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n")}\n`;
}
