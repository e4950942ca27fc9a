/**
 * The scheduler against a hand-driven clock and a runner the test controls: which runs start,
 * when, and what is skipped. Runs here are the scheduler's view only; the real runner is
 * exercised end to end in test/serve.
 */
import { describe, expect, it } from "vitest";
import { CancelledError, LockedError } from "../../src/errors.js";
import {
  type RunRequest,
  Scheduler,
  type SchedulerLog,
  type SkipReason,
} from "../../src/scheduler/scheduler.js";
import { blankReport, type RunReport } from "../../src/sync/run.js";
import { FakeClock } from "./fake-clock.js";

function report(name: string, runId: number, status: RunReport["status"] = "succeeded"): RunReport {
  return { ...blankReport(name, false, new Date(0)), runId, status };
}

interface Started {
  req: RunRequest;
  at: string;
  finish(status?: RunReport["status"]): void;
  fail(err: unknown): void;
}

/** A runner whose runs stay in progress until the test finishes them. */
function controlledRunner(clock: FakeClock) {
  const started: Started[] = [];
  let nextId = 1;
  const runner = (req: RunRequest) =>
    new Promise<RunReport>((resolve, reject) => {
      const id = nextId++;
      req.onRunId(id);
      req.signal.addEventListener("abort", () => resolve(report(req.name, id, "cancelled")));
      started.push({
        req,
        at: clock.now().toISOString(),
        finish: (status = "succeeded") => resolve(report(req.name, id, status)),
        fail: reject,
      });
    });
  return { runner, started };
}

function memoryLog() {
  const lines: { level: string; msg: string; obj: Record<string, unknown> }[] = [];
  const log: SchedulerLog = {
    info: (obj, msg) => lines.push({ level: "info", msg, obj }),
    warn: (obj, msg) => lines.push({ level: "warn", msg, obj }),
    error: (obj, msg) => lines.push({ level: "error", msg, obj }),
  };
  return { log, lines };
}

function setup(
  start: string,
  opts: {
    lastRun?: Record<string, string | null>;
    runner?: (req: RunRequest) => Promise<RunReport>;
  } = {},
) {
  const clock = new FakeClock(start);
  const ctl = controlledRunner(clock);
  const { log, lines } = memoryLog();
  const skips: [string, SkipReason][] = [];
  const scheduler = new Scheduler({
    runner: opts.runner ?? ctl.runner,
    lastRunStart: async (name) => {
      const v = opts.lastRun?.[name];
      return v ? new Date(v) : null;
    },
    log,
    clock,
    onSkip: (name, reason) => skips.push([name, reason]),
  });
  return { clock, scheduler, started: ctl.started, lines, skips };
}

const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("Scheduler", () => {
  it("basic with at: runs at the aligned UTC times, one timer per sync", async () => {
    const { clock, scheduler, started } = setup("2024-05-01T05:00:00Z");
    await scheduler.start({
      a: { type: "basic", every: "6h", at: "06:30" },
      m: { type: "manual" },
    });
    expect(clock.pending().map((d) => d.toISOString())).toEqual(["2024-05-01T06:30:00.000Z"]);
    const state = scheduler.states();
    expect(state.find((s) => s.name === "m")?.nextRun).toBeNull();

    clock.advanceTo("2024-05-01T06:29:59Z");
    expect(started).toHaveLength(0);
    clock.advanceTo("2024-05-01T06:30:00Z");
    expect(started.map((s) => [s.req.name, s.at, s.req.reason])).toEqual([
      ["a", "2024-05-01T06:30:00.000Z", "schedule"],
    ]);
    started[0]?.finish();
    await scheduler.idle();
    clock.advanceTo("2024-05-02T00:30:00Z");
    expect(started.map((s) => s.at)).toEqual([
      "2024-05-01T06:30:00.000Z",
      "2024-05-01T12:30:00.000Z",
    ]);
  });

  it("cron in UTC across midnight", async () => {
    const { clock, scheduler, started } = setup("2024-05-01T22:00:00Z");
    await scheduler.start({ c: { type: "cron", expression: "50 23,0 * * *" } });
    for (const s of ["2024-05-01T23:50:00Z", "2024-05-02T00:50:00Z", "2024-05-02T23:50:00Z"]) {
      clock.advanceTo(s);
      started.at(-1)?.finish();
      await scheduler.idle();
    }
    expect(started.map((s) => s.at)).toEqual([
      "2024-05-01T23:50:00.000Z",
      "2024-05-02T00:50:00.000Z",
      "2024-05-02T23:50:00.000Z",
    ]);
  });

  it("a run missed while down runs once at start-up, however many ticks were missed", async () => {
    const { clock, scheduler, started, lines } = setup("2024-05-01T12:10:00Z", {
      // last run a day and a half ago: dozens of hourly ticks missed
      lastRun: { h: "2024-04-30T00:00:03Z", fresh: "2024-05-01T12:00:02Z", never: null },
    });
    await scheduler.start({
      h: { type: "basic", every: "1h" },
      fresh: { type: "basic", every: "1h" },
      never: { type: "basic", every: "1h" },
    });
    expect(started.map((s) => [s.req.name, s.req.reason])).toEqual([["h", "catch-up"]]);
    expect(lines.some((l) => l.msg.includes("missed") && l.obj.sync === "h")).toBe(true);
    started[0]?.finish();
    await scheduler.idle();
    // then the normal schedule, once per tick
    clock.advanceTo("2024-05-01T13:00:00Z");
    expect(
      started
        .map((s) => [s.req.name, s.req.reason])
        .slice(1)
        .sort(),
    ).toEqual([
      ["fresh", "schedule"],
      ["h", "schedule"],
      ["never", "schedule"],
    ]);
  });

  it("a tick that finds its sync still running is skipped and logged", async () => {
    const { clock, scheduler, started, lines, skips } = setup("2024-05-01T00:00:00Z");
    await scheduler.start({ s: { type: "basic", every: "5m" } });
    clock.advanceTo("2024-05-01T00:05:00Z");
    expect(started).toHaveLength(1);
    clock.advanceTo("2024-05-01T00:15:00Z");
    expect(started).toHaveLength(1);
    expect(skips).toEqual([
      ["s", "still_running"],
      ["s", "still_running"],
    ]);
    expect(lines.filter((l) => l.msg.startsWith("skipped")).map((l) => l.obj.scheduledFor)).toEqual(
      ["2024-05-01T00:10:00.000Z", "2024-05-01T00:15:00.000Z"],
    );
    started[0]?.finish();
    await scheduler.idle();
    clock.advanceTo("2024-05-01T00:20:00Z");
    expect(started.map((s) => s.at)).toEqual([
      "2024-05-01T00:05:00.000Z",
      "2024-05-01T00:20:00.000Z",
    ]);
  });

  it("a run held elsewhere (warehouse lock) is logged as skipped", async () => {
    const { clock, scheduler, lines, skips } = setup("2024-05-01T00:00:00Z", {
      runner: async () => {
        throw new LockedError("held by another process");
      },
    });
    await scheduler.start({ s: { type: "basic", every: "5m" } });
    clock.advanceTo("2024-05-01T00:05:00Z");
    await scheduler.idle();
    expect(skips).toEqual([["s", "running_elsewhere"]]);
    expect(lines.some((l) => l.msg === "skipped: running elsewhere")).toBe(true);
    await expect(scheduler.trigger("s")).rejects.toBeInstanceOf(LockedError);
  });

  it("trigger answers with the run id, refuses a second run and unknown syncs", async () => {
    const { scheduler, started } = setup("2024-05-01T00:00:00Z");
    await scheduler.start({ s: { type: "manual" } });
    const first = await scheduler.trigger("s");
    expect(first.runId).toBe(1);
    await expect(scheduler.trigger("s")).rejects.toBeInstanceOf(LockedError);
    await expect(scheduler.trigger("nope")).rejects.toThrow(/no sync named "nope"/);
    expect(scheduler.states()[0]?.running?.runId).toBe(1);
    started[0]?.finish();
    if (first.runId === null) throw new Error("expected a run id");
    const end = await first.finished;
    expect(end.kind === "finished" && end.report.status).toBe("succeeded");
    expect((await scheduler.trigger("s")).runId).toBe(2);
  });

  it("trigger of a run that fails before it has an id returns its report", async () => {
    const { scheduler } = setup("2024-05-01T00:00:00Z", {
      runner: async (req) => ({
        ...report(req.name, 0, "failed"),
        runId: null,
        error: { code: "auth_failed", message: "bad key" },
      }),
    });
    await scheduler.start({ s: { type: "manual" } });
    const r = await scheduler.trigger("s");
    expect(r.runId).toBeNull();
    expect(r.runId === null && r.message).toBe("bad key");
    expect(scheduler.isRunning("s")).toBe(false);
  });

  it("reload re-arms changed schedules and drops removed ones", async () => {
    const { clock, scheduler, started } = setup("2024-05-01T00:00:00Z");
    await scheduler.start({ a: { type: "basic", every: "1h" }, b: { type: "basic", every: "1h" } });
    scheduler.update({ a: { type: "cron", expression: "30 0 * * *" } });
    expect(clock.pending().map((d) => d.toISOString())).toEqual(["2024-05-01T00:30:00.000Z"]);
    clock.advanceTo("2024-05-01T01:00:00Z");
    expect(started.map((s) => [s.req.name, s.at])).toEqual([["a", "2024-05-01T00:30:00.000Z"]]);
  });

  it("stop: no new runs, running ones are aborted and awaited, within the bound", async () => {
    const { clock, scheduler, started } = setup("2024-05-01T00:00:00Z");
    await scheduler.start({ s: { type: "basic", every: "5m" }, t: { type: "manual" } });
    clock.advanceTo("2024-05-01T00:05:00Z");
    const run = started[0];
    expect(run?.req.signal.aborted).toBe(false);
    const left = await scheduler.stop({ timeoutMs: 1000 });
    expect(left).toEqual([]);
    expect(run?.req.signal.aborted).toBe(true);
    expect(clock.pending()).toEqual([]);
    clock.advance(3_600_000);
    expect(started).toHaveLength(1);
    await expect(scheduler.trigger("t")).rejects.toBeInstanceOf(CancelledError);
  });

  it("stop gives up waiting after the bound and names the runs still going", async () => {
    const clock = new FakeClock("2024-05-01T00:00:00Z");
    const { log } = memoryLog();
    const scheduler = new Scheduler({
      // a run that ignores its signal
      runner: (req) => {
        req.onRunId(1);
        return new Promise<RunReport>(() => undefined);
      },
      lastRunStart: async () => null,
      log,
      clock,
    });
    await scheduler.start({ s: { type: "manual" } });
    await scheduler.trigger("s");
    const stopping = scheduler.stop({ timeoutMs: 5000 });
    await flush();
    clock.advance(5000);
    expect(await stopping).toEqual(["s"]);
  });
});
