/**
 * `audience-sync serve` as a library: the config, the scheduler with a runner that opens each
 * run's source and client, reads of the run history from the warehouse, metrics, and the HTTP
 * API. The CLI (src/cli/serve.ts) adds signals and the process's lifetime; tests start it in
 * process.
 */
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { type Config, getSync, loadConfig, type Schedule } from "../config/index.js";
import { LockedError, redact } from "../errors.js";
import type { ClientExtras } from "../iterable/client.js";
import { openSource } from "../sources/index.js";
import type { Source } from "../sources/source.js";
import {
  ensureState,
  type FailureRow,
  getRun,
  listFailures,
  listRuns,
  type RunRow,
} from "../state/store.js";
import { withSync } from "../sync/context.js";
import { failedReport, type RunReport, reportOf, runSync } from "../sync/run.js";
import { type ApiBackend, createApiServer, type SyncView } from "./http.js";
import type { Logger } from "./log.js";
import { ServiceMetrics } from "./metrics.js";
import { type RunRequest, Scheduler, type TimerClock } from "./scheduler.js";

export interface ServiceOptions {
  configFile: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** Bearer token every /api route requires; null leaves the API open (loopback only). */
  token: string | null;
  logger: Logger;
  /** Where `${VAR}` of the config comes from; process.env when absent. */
  env?: NodeJS.ProcessEnv;
  clock?: TimerClock;
  /** Client tuning (tests shorten retries). Metrics hooks are added to it. */
  client?: Omit<ClientExtras, "events">;
  /** How long reads (API, health) wait for a DuckDB file another process holds; default 2 s. */
  readBusyTimeoutMs?: number;
}

export interface Service {
  /** e.g. http://127.0.0.1:8080 */
  url: string;
  port: number;
  scheduler: Scheduler;
  metrics: ServiceMetrics;
  /** Re-reads the config file; a config that does not load is refused and the old one kept. */
  reload(): Promise<boolean>;
  /** Stops accepting requests and runs; waits for running ones up to `timeoutMs`. Returns the
   *  syncs still running at the bound. */
  stop(opts: { timeoutMs: number }): Promise<string[]>;
}

interface Loaded {
  config: Config;
  loadedAt: Date;
}

const schedulesOf = (config: Config): Record<string, Schedule> =>
  Object.fromEntries(Object.entries(config.syncs).map(([name, s]) => [name, s.schedule]));

/** Every secret of a config, to clear from messages that leave the process. */
function secretsOf(config: Config): string[] {
  const out: string[] = [];
  for (const d of Object.values(config.destinations)) out.push(d.apiKey);
  for (const s of Object.values(config.sources)) {
    if (s.type !== "duckdb") {
      if (s.password) out.push(s.password);
      if (s.url) {
        try {
          const pw = new URL(s.url).password;
          if (pw) out.push(decodeURIComponent(pw), pw);
        } catch {
          // not a URL the URL parser reads; nothing to take from it
        }
      }
    }
  }
  return out;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export async function startService(opts: ServiceOptions): Promise<Service> {
  const log = opts.logger;
  const env = opts.env ?? process.env;
  const readBusy = opts.readBusyTimeoutMs ?? 2000;
  let current: Loaded = {
    config: await loadConfig(opts.configFile, { env }),
    loadedAt: new Date(),
  };
  const metrics = new ServiceMetrics();
  metrics.declare(Object.keys(current.config.syncs));

  /** Opens a sync's source for a short read of the state schema. */
  async function withStateOf<T>(
    config: Config,
    syncName: string,
    fn: (source: Source) => Promise<T>,
  ): Promise<T> {
    const resolved = getSync(config, syncName);
    const source = await openSource(resolved.source, {
      name: resolved.sync.source,
      busyTimeoutMs: readBusy,
    });
    try {
      await ensureState(source);
      return await fn(source);
    } finally {
      await source.close();
    }
  }

  const runner = async (req: RunRequest): Promise<RunReport> => {
    // A run keeps the config it started with; a reload meanwhile applies from the next run.
    const config = current.config;
    const secrets = secretsOf(config);
    metrics.runStarted(req.name);
    let report: RunReport | null = null;
    try {
      report = await withSync(
        config,
        req.name,
        ({ resolved, source, api }) =>
          runSync(
            resolved,
            { api, source },
            { fullResync: req.fullResync, signal: req.signal, onRunId: req.onRunId },
          ),
        { signal: req.signal, client: { ...opts.client, events: metrics.clientEvents(req.name) } },
      );
      return report;
    } catch (err) {
      if (err instanceof LockedError) throw err;
      report = reportOf(err) ?? failedReport(req.name, req.fullResync, err, secrets);
      return report;
    } finally {
      metrics.runEnded(req.name, report);
    }
  };

  const scheduler = new Scheduler({
    runner,
    lastRunStart: (name) =>
      withStateOf(current.config, name, async (source) => {
        const started = (await listRuns(source, name, 1))[0]?.startedAt;
        return started ? new Date(started) : null;
      }),
    log,
    ...(opts.clock ? { clock: opts.clock } : {}),
    onSkip: (name, reason) => metrics.skip(name, reason),
  });

  const backend: ApiBackend = {
    hasSync: (name) => name in current.config.syncs,
    async syncs(): Promise<SyncView[]> {
      const config = current.config;
      const states = new Map(scheduler.states().map((s) => [s.name, s]));
      return await Promise.all(
        Object.entries(config.syncs).map(async ([name, sync]) => {
          const state = states.get(name);
          let lastRun: RunRow | null = null;
          let lastRunError: string | undefined;
          try {
            lastRun = await withStateOf(
              config,
              name,
              async (s) => (await listRuns(s, name, 1))[0] ?? null,
            );
          } catch (err) {
            lastRunError = redact(errorText(err), ...secretsOf(config));
          }
          return {
            name,
            source: sync.source,
            destination: sync.destination,
            schedule: sync.schedule,
            nextRun: state?.nextRun?.toISOString() ?? null,
            running: state?.running
              ? {
                  runId: state.running.runId,
                  reason: state.running.reason,
                  startedAt: state.running.startedAt.toISOString(),
                }
              : null,
            lastRun,
            ...(lastRunError ? { lastRunError } : {}),
          };
        }),
      );
    },
    runs: (name, limit) => withStateOf(current.config, name, (s) => listRuns(s, name, limit)),
    async run(name, runId): Promise<RunRow | null> {
      return await withStateOf(current.config, name, (s) => getRun(s, name, runId));
    },
    failures: (name, q): Promise<FailureRow[]> =>
      withStateOf(current.config, name, (s) => listFailures(s, name, q)),
    trigger: (name, o) => scheduler.trigger(name, o),
    async health() {
      const config = current.config;
      const sources = await Promise.all(
        Object.entries(config.sources).map(async ([name, src]) => {
          try {
            const s = await openSource(src, { name, busyTimeoutMs: readBusy });
            await s.close();
            return [name, "ok"] as const;
          } catch (err) {
            log.warn(
              { source: name, error: redact(errorText(err), ...secretsOf(config)) },
              "health: source unreachable",
            );
            return [name, "unreachable"] as const;
          }
        }),
      );
      return {
        configLoadedAt: current.loadedAt.toISOString(),
        syncs: Object.keys(config.syncs).length,
        sources: Object.fromEntries(sources),
      };
    },
    metrics: () => metrics.text(),
    secrets: () => secretsOf(current.config),
  };

  const server: Server = createApiServer(backend, { token: opts.token, log });
  const host = opts.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 8080, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;

  await scheduler.start(schedulesOf(current.config));
  for (const s of scheduler.states()) {
    log.info(
      { sync: s.name, schedule: s.schedule, nextRun: s.nextRun?.toISOString() ?? null },
      "scheduled",
    );
  }
  log.info({ url, syncs: Object.keys(current.config.syncs).length }, "listening");

  return {
    url,
    port,
    scheduler,
    metrics,
    async reload(): Promise<boolean> {
      let config: Config;
      try {
        config = await loadConfig(opts.configFile, { env });
      } catch (err) {
        log.error(
          { file: opts.configFile, error: redact(errorText(err), ...secretsOf(current.config)) },
          "config reload refused; the previous config keeps running",
        );
        return false;
      }
      current = { config, loadedAt: new Date() };
      metrics.declare(Object.keys(config.syncs));
      scheduler.update(schedulesOf(config));
      for (const s of scheduler.states()) {
        log.info(
          { sync: s.name, schedule: s.schedule, nextRun: s.nextRun?.toISOString() ?? null },
          "scheduled",
        );
      }
      log.info(
        { file: opts.configFile, syncs: Object.keys(config.syncs).length },
        "config reloaded",
      );
      return true;
    },
    async stop({ timeoutMs }): Promise<string[]> {
      log.info({ timeoutMs }, "stopping: no new runs; running ones stop sending and commit");
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const left = await scheduler.stop({ timeoutMs });
      // Requests still open (a slow client) must not hold the process past the bound.
      server.closeAllConnections();
      await closed;
      if (left.length > 0) {
        log.error({ syncs: left }, "stopped with runs still going; their next run redoes the work");
      } else {
        log.info({}, "stopped");
      }
      return left;
    },
  };
}
