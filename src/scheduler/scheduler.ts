/**
 * Runs syncs on their schedules: one timer per sync, at most one run per sync at a time in this
 * process (a tick that finds its sync running is skipped), one catch-up run at start-up for a
 * sync whose scheduled time passed while no service was up, manual triggers, and a bounded
 * graceful stop. Other processes are kept out by the warehouse lock: the runner rejects with
 * LockedError and the tick is skipped.
 *
 * What a run does is the runner's business (src/scheduler/service.ts passes one that opens the
 * sync's source and client); time comes from an injectable clock, so tests drive it by hand.
 */
import type { Schedule } from "../config/index.js";
import { CancelledError, ConfigError, LockedError } from "../errors.js";
import type { RunReport } from "../sync/run.js";
import { missedRun, nextRun } from "./next.js";

export interface TimerClock {
  now(): Date;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemTimerClock: TimerClock = {
  now: () => new Date(),
  setTimeout: (fn, ms) => {
    const handle = setTimeout(fn, ms);
    // Timers alone must not keep the process up: the HTTP server does, until stop.
    handle.unref();
    return handle;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export type RunReason = "schedule" | "catch-up" | "manual";

export interface RunRequest {
  name: string;
  reason: RunReason;
  fullResync: boolean;
  signal: AbortSignal;
  /** The runner calls this once the run has an id in the warehouse. */
  onRunId: (id: number) => void;
}

/** Runs one sync. Resolves with the report, also of a failed run; rejects with LockedError when
 *  the sync is running elsewhere (nothing was done). Any other rejection counts as a failed run. */
export type SyncRunner = (req: RunRequest) => Promise<RunReport>;

type LogFn = (obj: Record<string, unknown>, msg: string) => void;
export interface SchedulerLog {
  info: LogFn;
  warn: LogFn;
  error: LogFn;
}

export type SkipReason = "still_running" | "running_elsewhere";

export interface SchedulerOptions {
  runner: SyncRunner;
  /** When the newest run of a sync started (from the warehouse's sync_runs), for catch-up. */
  lastRunStart: (name: string) => Promise<Date | null>;
  log: SchedulerLog;
  clock?: TimerClock;
  onSkip?: (name: string, reason: SkipReason) => void;
}

export interface RunningState {
  reason: RunReason;
  startedAt: Date;
  runId: number | null;
}

export interface SyncState {
  name: string;
  schedule: Schedule;
  /** Null for manual schedules and while stopping. */
  nextRun: Date | null;
  running: RunningState | null;
}

/** How a run ended, as the scheduler saw it. */
export type RunEnd =
  | { kind: "finished"; report: RunReport }
  | { kind: "locked"; message: string }
  | { kind: "crashed"; message: string };

export type TriggerResult =
  | { runId: number; finished: Promise<RunEnd> }
  /** the run ended before it had an id: it failed while starting (source, key, list) */
  | { runId: null; report: RunReport | null; message: string };

interface Running extends RunningState {
  controller: AbortController;
  idKnown: Promise<number | null>;
  done: Promise<RunEnd>;
}

// setTimeout takes at most 2^31-1 ms (~24.8 days); longer waits (a yearly cron) are cut up.
const MAX_DELAY_MS = 2_147_483_647;

export class Scheduler {
  private readonly clock: TimerClock;
  private schedules = new Map<string, Schedule>();
  private readonly timers = new Map<string, { handle: unknown; due: Date }>();
  private readonly running = new Map<string, Running>();
  private stopping = false;

  constructor(private readonly opts: SchedulerOptions) {
    this.clock = opts.clock ?? systemTimerClock;
  }

  /** Arms every schedule, then runs once each sync that missed a scheduled time while down. */
  async start(schedules: Record<string, Schedule>): Promise<void> {
    this.update(schedules);
    const now = this.clock.now();
    await Promise.all(
      [...this.schedules].map(async ([name, schedule]) => {
        if (schedule.type === "manual") return;
        let last: Date | null;
        try {
          last = await this.opts.lastRunStart(name);
        } catch (err) {
          this.opts.log.warn(
            { sync: name, error: message(err) },
            "could not read the last run; no catch-up run",
          );
          return;
        }
        if (!missedRun(schedule, last, now) || this.stopping) return;
        if (this.running.has(name)) return;
        this.opts.log.info(
          { sync: name, lastRunStart: last?.toISOString() ?? null },
          "a scheduled run was missed while the service was down: running it once now",
        );
        this.launch(name, "catch-up", false);
      }),
    );
  }

  /** Takes a new set of schedules (config reload): removed syncs lose their timer, changed and
   *  new ones are re-armed, unchanged ones keep theirs. Runs in progress carry on. */
  update(schedules: Record<string, Schedule>): void {
    const next = new Map(Object.entries(schedules));
    for (const name of this.schedules.keys()) {
      if (!next.has(name)) this.disarm(name);
    }
    const previous = this.schedules;
    this.schedules = next;
    for (const [name, schedule] of next) {
      const before = previous.get(name);
      if (before && JSON.stringify(before) === JSON.stringify(schedule) && this.timers.has(name)) {
        continue;
      }
      this.arm(name);
    }
  }

  states(): SyncState[] {
    return [...this.schedules].map(([name, schedule]) => {
      const r = this.running.get(name);
      return {
        name,
        schedule,
        nextRun: this.timers.get(name)?.due ?? null,
        running: r ? { reason: r.reason, startedAt: r.startedAt, runId: r.runId } : null,
      };
    });
  }

  isRunning(name: string): boolean {
    return this.running.has(name);
  }

  /**
   * Starts a run now and resolves once it has its id (or has ended without one). Throws
   * ConfigError for an unknown sync, LockedError when it is running here or elsewhere, and
   * CancelledError while the service stops.
   */
  async trigger(name: string, opts: { fullResync?: boolean } = {}): Promise<TriggerResult> {
    if (!this.schedules.has(name)) throw new ConfigError(`no sync named "${name}"`);
    if (this.stopping) throw new CancelledError("the service is stopping; no new runs");
    const current = this.running.get(name);
    if (current) {
      throw new LockedError(
        `sync "${name}" is already running${current.runId === null ? "" : ` (run ${current.runId})`}`,
      );
    }
    const run = this.launch(name, "manual", opts.fullResync === true);
    const runId = await run.idKnown;
    if (runId !== null) return { runId, finished: run.done };
    const end = await run.done;
    if (end.kind === "locked") throw new LockedError(end.message);
    if (end.kind === "crashed") return { runId: null, report: null, message: end.message };
    return {
      runId: null,
      report: end.report,
      message: end.report.error?.message ?? "the run ended before it started",
    };
  }

  /** Resolves once no run is in progress (tests, and the end of stop). */
  async idle(): Promise<void> {
    while (this.running.size > 0) {
      await Promise.allSettled([...this.running.values()].map((r) => r.done));
    }
  }

  /**
   * No new runs; running ones are asked to stop sending and commit what was confirmed. Waits for
   * them up to `timeoutMs`; returns the syncs still running then.
   */
  async stop(opts: { timeoutMs: number }): Promise<string[]> {
    this.stopping = true;
    for (const name of [...this.timers.keys()]) this.disarm(name);
    const runs = [...this.running.values()];
    for (const r of runs) r.controller.abort(new CancelledError("the service is stopping"));
    if (runs.length > 0) {
      let handle: unknown;
      const bound = new Promise<void>((resolve) => {
        handle = this.clock.setTimeout(resolve, opts.timeoutMs);
      });
      await Promise.race([Promise.allSettled(runs.map((r) => r.done)), bound]);
      this.clock.clearTimeout(handle);
    }
    return [...this.running.keys()];
  }

  private arm(name: string): void {
    this.disarm(name);
    const schedule = this.schedules.get(name);
    if (!schedule || this.stopping) return;
    const due = nextRun(schedule, this.clock.now());
    if (due) this.setTimer(name, due);
  }

  private disarm(name: string): void {
    const timer = this.timers.get(name);
    if (timer) this.clock.clearTimeout(timer.handle);
    this.timers.delete(name);
  }

  private setTimer(name: string, due: Date): void {
    const delay = Math.min(Math.max(0, due.getTime() - this.clock.now().getTime()), MAX_DELAY_MS);
    const handle = this.clock.setTimeout(() => this.onTimer(name, due), delay);
    this.timers.set(name, { handle, due });
  }

  private onTimer(name: string, due: Date): void {
    this.timers.delete(name);
    if (this.stopping || !this.schedules.has(name)) return;
    if (this.clock.now().getTime() < due.getTime()) {
      this.setTimer(name, due);
      return;
    }
    if (this.running.has(name)) {
      this.opts.log.info(
        { sync: name, scheduledFor: due.toISOString() },
        "skipped: the previous run of this sync is still running",
      );
      this.opts.onSkip?.(name, "still_running");
    } else {
      this.launch(name, "schedule", false);
    }
    // From now, not from `due`: after a long pause (a suspended machine) the ticks missed
    // meanwhile are not replayed one by one.
    this.arm(name);
  }

  private launch(name: string, reason: RunReason, fullResync: boolean): Running {
    const controller = new AbortController();
    let idResolve: (id: number | null) => void = () => undefined;
    const idKnown = new Promise<number | null>((resolve) => {
      idResolve = resolve;
    });
    const entry: Running = {
      reason,
      startedAt: this.clock.now(),
      runId: null,
      controller,
      idKnown,
      done: Promise.resolve<RunEnd>({ kind: "crashed", message: "not started" }),
    };
    this.running.set(name, entry);
    const log = this.opts.log;
    entry.done = (async (): Promise<RunEnd> => {
      try {
        const report = await this.opts.runner({
          name,
          reason,
          fullResync,
          signal: controller.signal,
          onRunId: (id) => {
            entry.runId = id;
            // Logged here, not at launch: a run refused by the lock elsewhere never started.
            log.info({ sync: name, reason, runId: id }, "run started");
            idResolve(id);
          },
        });
        logFinished(log, name, reason, report);
        return { kind: "finished", report };
      } catch (err) {
        if (err instanceof LockedError) {
          log.info({ sync: name, reason }, "skipped: running elsewhere");
          this.opts.onSkip?.(name, "running_elsewhere");
          return { kind: "locked", message: err.message };
        }
        log.error({ sync: name, reason, error: message(err) }, "run failed unexpectedly");
        return { kind: "crashed", message: message(err) };
      } finally {
        if (this.running.get(name) === entry) this.running.delete(name);
        idResolve(null);
      }
    })();
    return entry;
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Counts only: identifiers of records never reach the info-level log. */
function logFinished(log: SchedulerLog, name: string, reason: RunReason, r: RunReport): void {
  const fields = {
    sync: name,
    reason,
    runId: r.runId,
    status: r.status,
    durationMs: r.durationMs,
    rowsRead: r.rowsRead,
    invalidRows: r.invalidRows,
    members: r.members,
    planned: { subscribe: r.planned.subscribe, unsubscribe: r.planned.unsubscribe },
    succeeded: r.succeeded,
    failed: r.failed,
    failuresByCode: r.failuresByCode,
    ...(r.error ? { error: r.error } : {}),
  };
  if (r.status === "failed") log.error(fields, "run finished");
  else if (r.status === "cancelled" || r.status === "completed_with_failures")
    log.warn(fields, "run finished");
  else log.info(fields, "run finished");
}
