/**
 * Prometheus metrics of the service (prom-client), in a registry of its own so that two services
 * in one process (tests) do not share counters. Labels carry sync names, operations, outcomes,
 * failure codes and HTTP statuses: never identifiers of records.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { TransportEvents } from "../iterable/transport.js";
import type { RunReport } from "../sync/run.js";
import type { SkipReason } from "./scheduler.js";

/** `/api/lists/123/size` -> `/api/lists/{id}`: ids would make one time series per list. */
export function pathLabel(path: string): string {
  return path.split("?")[0]?.replace(/\/\d+(?=\/|$)/g, "/{id}") ?? path;
}

export class ServiceMetrics {
  readonly registry = new Registry();
  private readonly runs: Counter<"sync" | "status">;
  private readonly skipped: Counter<"sync" | "reason">;
  private readonly records: Counter<"sync" | "operation" | "outcome">;
  private readonly failures: Counter<"sync" | "code">;
  private readonly requests: Counter<"sync" | "method" | "path" | "status">;
  private readonly rateLimited: Counter<"sync">;
  private readonly duration: Histogram<"sync" | "status">;
  private readonly running: Gauge<"sync">;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: "audience_sync_process_" });
    this.runs = new Counter({
      name: "audience_sync_runs_total",
      help: "Finished runs by sync and status (succeeded, completed_with_failures, failed, cancelled).",
      labelNames: ["sync", "status"],
      registers,
    });
    this.skipped = new Counter({
      name: "audience_sync_runs_skipped_total",
      help: "Scheduled or requested runs not started: still_running here, or running_elsewhere (the warehouse lock is held).",
      labelNames: ["sync", "reason"],
      registers,
    });
    this.records = new Counter({
      name: "audience_sync_records_total",
      help: "Records by operation (subscribe, unsubscribe) and outcome (succeeded, failed).",
      labelNames: ["sync", "operation", "outcome"],
      registers,
    });
    this.failures = new Counter({
      name: "audience_sync_record_failures_total",
      help: "Failed records by failure code.",
      labelNames: ["sync", "code"],
      registers,
    });
    this.requests = new Counter({
      name: "audience_sync_iterable_requests_total",
      help: "Requests to the Iterable API by method, path and HTTP status (none: no answer).",
      labelNames: ["sync", "method", "path", "status"],
      registers,
    });
    this.rateLimited = new Counter({
      name: "audience_sync_iterable_rate_limited_total",
      help: "Answers 429 (rate limited) from the Iterable API.",
      labelNames: ["sync"],
      registers,
    });
    this.duration = new Histogram({
      name: "audience_sync_run_duration_seconds",
      help: "Duration of finished runs.",
      labelNames: ["sync", "status"],
      buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200],
      registers,
    });
    this.running = new Gauge({
      name: "audience_sync_running",
      help: "1 while a run of the sync is in progress in this process.",
      labelNames: ["sync"],
      registers,
    });
  }

  /** Client hooks counting one sync's requests; they must not throw (TransportEvents). */
  clientEvents(sync: string): TransportEvents {
    return {
      onRequest: (e) => {
        this.requests.inc({
          sync,
          method: e.method,
          path: pathLabel(e.path),
          status: e.status === undefined ? "none" : String(e.status),
        });
      },
      onRateLimited: () => {
        this.rateLimited.inc({ sync });
      },
    };
  }

  runStarted(sync: string): void {
    this.running.inc({ sync });
  }

  runEnded(sync: string, report: RunReport | null): void {
    this.running.dec({ sync });
    if (!report) return;
    this.runs.inc({ sync, status: report.status });
    this.duration.observe({ sync, status: report.status }, report.durationMs / 1000);
    for (const operation of ["subscribe", "unsubscribe"] as const) {
      const ok = report.succeeded[operation];
      const failed = report.failed[operation];
      if (ok > 0) this.records.inc({ sync, operation, outcome: "succeeded" }, ok);
      if (failed > 0) this.records.inc({ sync, operation, outcome: "failed" }, failed);
    }
    for (const [code, n] of Object.entries(report.failuresByCode)) {
      if (n && n > 0) this.failures.inc({ sync, code }, n);
    }
  }

  skip(sync: string, reason: SkipReason): void {
    this.skipped.inc({ sync, reason });
  }

  /** Makes every sync's series visible at 0 before its first run. */
  declare(syncs: string[]): void {
    for (const sync of syncs) {
      this.running.set({ sync }, 0);
      for (const status of ["succeeded", "completed_with_failures", "failed", "cancelled"]) {
        this.runs.inc({ sync, status }, 0);
      }
    }
  }

  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
